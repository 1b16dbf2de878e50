"""AssembleEpisode: the production's shots, in storyboard order, as episode.mp4, poster.jpg,
contact_sheet.jpg and production.json under productions/<job_id>/ (vidpipe/production/assemble.py)."""

import tempfile
from pathlib import Path

from vidpipe import clock
from vidpipe.generation.events import parse_event
from vidpipe.handback import handing_back
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.production.assemble import AssembleEvent, assemble_episode
from vidpipe.runtime import deps


@lambda_handler
def handler(event, context):
    with handing_back(context):
        request = parse_event(AssembleEvent, event)
        annotate_job(request.job_id)
        d = deps()
        s = d.settings
        with tempfile.TemporaryDirectory(prefix="assemble-") as workdir:  # /tmp: the shots, then the episode
            result = assemble_episode(request, s3=d.s3, bucket=s.media_bucket, shots_prefix=s.video_output_s3_prefix,
                                      workdir=Path(workdir), now=clock.now)
        logger.info("episode assembled", extra={"frames": result.frames, "gaps": len(result.gaps)})
        return result.model_dump(mode="json")
