"""EnhancePrompt: a cheap chat model rewrites the prompt into a physics-aware scene."""

from vidpipe.analysis.clients import chat_client
from vidpipe.generation.enhance import enhance_prompt
from vidpipe.generation.events import JobEvent, parse_event
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    job = parse_event(JobEvent, event)
    logger.set_correlation_id(job.job_id)
    d = deps()
    enhancement = enhance_prompt(job.job_id, job.request, chat_client(d), d.accounting, d.settings.enhance_model)
    if enhancement.fallback_reason:
        logger.warning("prompt enhancement fell back", extra={"reason": enhancement.fallback_reason})
    return enhancement.model_dump(mode="json")
