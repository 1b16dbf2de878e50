"""AnalyzeChunk: one chunk of K frames to the chat model; the validated answer goes to S3."""

from vidpipe.analysis.analyze import analyze_chunk
from vidpipe.analysis.clients import chat_client
from vidpipe.analysis.models import AnalyzeEvent
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = AnalyzeEvent.model_validate(event)
        annotate_job(request.job_id)
        d = deps()
        result = analyze_chunk(request, d.s3, d.settings.media_bucket, chat_client(d), d.accounting)
        return result.model_dump(mode="json")
