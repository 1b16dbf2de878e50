"""CheckGeneration: one status check; returns the updated poll state (next wait included)."""

from vidpipe import clock
from vidpipe.generation.check import check_generation
from vidpipe.generation.events import STATUS_RETRY, PollEvent, parse_event, video_provider
from vidpipe.generation.polling import PollPolicy
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    job = parse_event(PollEvent, event)
    logger.set_correlation_id(job.job_id)
    d = deps()
    s = d.settings
    poll = check_generation(job.job_id, job.request, job.poll, video_provider(job.poll.provider, d, STATUS_RETRY),
                            d.accounting, policy=PollPolicy.from_settings(s), max_attempts=s.poll_max_attempts,
                            now=clock.now)
    logger.info("generation checked", extra={"state": poll.state, "attempt": poll.attempt,
                                             "wait_seconds": poll.wait_seconds})
    return poll.model_dump(mode="json")
