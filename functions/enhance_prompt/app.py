"""EnhancePrompt: a cheap chat model rewrites the prompt into a physics-aware scene."""

from vidpipe.analysis.clients import chat_client
from vidpipe.generation.enhance import enhance_prompt
from vidpipe.generation.events import JobEvent, parse_event
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.routing import chat_model
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        job = parse_event(JobEvent, event)
        annotate_job(job.job_id)
        d = deps()
        model = chat_model(job.request.tier, "enhancement", d.settings)  # [ROUTING] the tier's
        enhancement = enhance_prompt(job.job_id, job.request, chat_client(d), d.accounting, model)
        if enhancement.fallback_reason:
            logger.warning("prompt enhancement fell back", extra={"reason": enhancement.fallback_reason})
        return enhancement.model_dump(mode="json")
