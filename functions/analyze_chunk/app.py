"""AnalyzeChunk: one chunk of K frames to the chat model; the validated answer goes to S3."""

from vidpipe.analysis.analyze import analyze_chunk
from vidpipe.analysis.clients import chat_client
from vidpipe.analysis.models import AnalyzeEvent
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    request = AnalyzeEvent.model_validate(event)
    logger.set_correlation_id(request.job_id)
    d = deps()
    result = analyze_chunk(request, d.s3, d.settings.media_bucket, chat_client(d), d.accounting)
    return result.model_dump(mode="json")
