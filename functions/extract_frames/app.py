"""ExtractFrames: one segment's frames sampled, de-duplicated, shrunk and written to S3 with its manifest."""

from vidpipe.analysis.extract import extract_segment
from vidpipe.analysis.models import ExtractEvent
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    request = ExtractEvent.model_validate(event)
    logger.set_correlation_id(request.job_id)
    d = deps()
    result = extract_segment(request, d.s3, d.settings.media_bucket)
    logger.info("extracted", extra={"segment": request.segment.index, "frames": result.frames})
    return result.model_dump(mode="json")
