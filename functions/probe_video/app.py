"""ProbeVideo: reject what is not a decodable video within the caps, before any provider call."""

from vidpipe.analysis.models import ProbeEvent
from vidpipe.analysis.probe import probe_upload
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = ProbeEvent.model_validate(event)
        annotate_job(request.job_id)
        d = deps()
        video = probe_upload(request, d.s3, d.settings)
        logger.info("probed", extra={"duration_s": video.duration_s, "size": f"{video.width}x{video.height}"})
        return video.model_dump(mode="json")
