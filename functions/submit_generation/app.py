"""SubmitGeneration: start the provider job (idempotently) and the polling state."""

from vidpipe import clock
from vidpipe.generation.events import SubmitEvent, parse_event, video_provider
from vidpipe.generation.polling import PollPolicy
from vidpipe.generation.submit import submit_generation
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    job = parse_event(SubmitEvent, event)
    logger.append_keys(job_id=job.job_id)
    d = deps()
    s = d.settings
    poll = submit_generation(
        job.job_id, job.request, job.enhancement, video_provider(job.request.provider, d),
        policy=PollPolicy.from_settings(s), deadline_s=s.poll_deadline_s,
        output_s3_uri=f"s3://{s.media_bucket}/{s.video_output_s3_prefix}/{job.job_id}/provider",
        now=clock.now)
    logger.info("generation submitted", extra={"provider_job_id": poll.provider_job_id, "eta_s": poll.eta_s})
    return poll.model_dump(mode="json")
