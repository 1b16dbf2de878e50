"""Both flows end here: settle spend, release the rest of the reservation, record the terminal state."""

from vidpipe.finalize import FinalizeInput, finalize
from vidpipe.jobs import json_safe
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    request = FinalizeInput.model_validate(event)
    logger.set_correlation_id(request.job_id)
    return json_safe(finalize(request, deps()))
