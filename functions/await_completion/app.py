"""AwaitCompletion: the Generation state machine's task-token wait for a provider's
completion webhook (``lambda:invoke.waitForTaskToken``). Stores the token against the
provider job id and returns; the execution waits until ProviderWebhookFunction resumes it
or the wait's TimeoutSeconds (the polling fallback) passes (vidpipe.completion_webhooks)."""

from pydantic import BaseModel

from vidpipe import aws, clock
from vidpipe.completion_webhooks import WaitStore, await_completion
from vidpipe.generation.events import parse_event
from vidpipe.generation.state import PollState
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.runtime import deps


class AwaitEvent(BaseModel):
    token: str
    job_id: str
    poll: PollState


@lambda_handler
def handler(event, context):
    wait = parse_event(AwaitEvent, event)
    annotate_job(wait.job_id)
    d = deps()
    result = await_completion(WaitStore(d.settings.table_name, d.jobs.ddb), aws.client("stepfunctions"),
                              token=wait.token, job_id=wait.job_id, poll=wait.poll, now=clock.now())
    logger.info("waiting for the completion webhook" if result["waiting"] else "the completion webhook came first",
                extra={"provider_job_id": wait.poll.provider_job_id, "await_s": wait.poll.await_s})
    return result
