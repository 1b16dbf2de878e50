"""ExtractFrames: one segment's frames sampled, de-duplicated, shrunk and written to S3 with its manifest."""

from vidpipe.analysis.extract import extract_segment
from vidpipe.analysis.models import ExtractEvent
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = ExtractEvent.model_validate(event)
        annotate_job(request.job_id)
        d = deps()
        result = extract_segment(request, d.s3, d.settings.media_bucket)
        logger.info("extracted", extra={"segment": request.segment.index, "frames": result.frames})
        return result.model_dump(mode="json")
