"""CheckGeneration: one status check; returns the updated poll state (next wait included)."""

from vidpipe import clock
from vidpipe.generation.check import check_generation
from vidpipe.generation.events import STATUS_RETRY, PollEvent, parse_event, video_provider, watch_store
from vidpipe.generation.polling import PollPolicy
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        job = parse_event(PollEvent, event)
        annotate_job(job.job_id)
        d = deps()
        s = d.settings
        poll = check_generation(job.job_id, job.request, job.poll, video_provider(job.poll.provider, d, STATUS_RETRY),
                                d.accounting, watch_store(d), policy=PollPolicy.from_settings(s),
                                max_attempts=s.poll_max_attempts, now=clock.now)
        logger.info("generation checked", extra={"state": poll.state, "attempt": poll.attempt,
                                                 "wait_seconds": poll.wait_seconds})
        return poll.model_dump(mode="json")
