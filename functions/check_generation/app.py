"""CheckGeneration: one status check; returns the updated poll state (next wait included)."""

from vidpipe import clock
from vidpipe.completion_webhooks import apply_webhooks
from vidpipe.generation.check import check_generation
from vidpipe.generation.events import STATUS_RETRY, PollEvent, parse_event, poll_provider, route_provider, watch_store
from vidpipe.generation.fallback import AttemptLog, after_failure
from vidpipe.generation.polling import PollPolicy
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.routing import video_routes
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        job = parse_event(PollEvent, event)
        annotate_job(job.job_id)
        d = deps()
        s = d.settings
        policy, watches = PollPolicy.from_settings(s), watch_store(d)

        def next_route(status):  # [ROUTING] a capacity failure moves the job to its next route (fallback.py)
            from vidpipe import reference_image

            return after_failure(
                job.job_id, job.request, job.poll, status, video_routes(job.request, s),
                lambda route: route_provider(route, d), d.accounting, watches, AttemptLog(s.table_name, d.jobs.ddb),
                policy=policy, output_s3_uri=f"s3://{s.media_bucket}/{s.video_output_s3_prefix}/{job.job_id}/provider",
                now=clock.now, submit_options=lambda: {"reference": reference_image.load(job.request.reference_image, d)})

        poll = check_generation(job.job_id, job.request, job.poll, poll_provider(job.poll, d, STATUS_RETRY),
                                d.accounting, watches, policy=policy,
                                max_attempts=s.poll_max_attempts, now=clock.now, on_failed=next_route)
        poll = apply_webhooks(poll, d, clock.now())  # [WEBHOOKS] still running: wait on the webhook again
        logger.info("generation checked", extra={"state": poll.state, "attempt": poll.attempt,
                                                 "wait_seconds": poll.wait_seconds})
        return poll.model_dump(mode="json")
