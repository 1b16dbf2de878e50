"""ProbeVideo: reject what is not a decodable video within the caps, before any provider call."""

from vidpipe.analysis.models import ProbeEvent
from vidpipe.analysis.probe import probe_upload
from vidpipe.observability import logger
from vidpipe.runtime import deps


@logger.inject_lambda_context
def handler(event, context):
    request = ProbeEvent.model_validate(event)
    logger.set_correlation_id(request.job_id)
    d = deps()
    video = probe_upload(request, d.s3, d.settings)
    logger.info("probed", extra={"duration_s": video.duration_s, "size": f"{video.width}x{video.height}"})
    return video.model_dump(mode="json")
