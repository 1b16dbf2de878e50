"""The Probe step: is the upload a decodable video within the caps?

The size cap is checked on the object's metadata first, so an oversize
upload is refused without being read. The video is then read by ranged GETs
(vidpipe.s3_file): its header, its index and its first frame, not the whole
file. The version probed is the one every segment reads (``VideoInfo.version_id``),
so an overwrite of the key during the job changes nothing the job sees.
Everything here runs before any provider call, so a bad input costs nothing
but this step.
"""

from __future__ import annotations

from vidpipe.analysis.models import ProbeEvent, VideoInfo
from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe.media.probe import check_caps, probe_video
from vidpipe.observability import logger
from vidpipe.s3_file import S3RangeFile, block_size_for, open_s3_object


# Probing reads the header, the index (well under 1 % of a file) and the first frame.
PROBE_SHARE = 1 / 64


def probe_upload(event: ProbeEvent, s3, settings: Settings) -> VideoInfo:
    upload = open_s3_object(s3, event.bucket, event.key, event.version_id)
    upload.block_size = block_size_for(int(upload.size * PROBE_SHARE))
    if upload.size > settings.max_video_bytes:
        raise InputRejected(f"the file is {upload.size} bytes, over the {settings.max_video_bytes}-byte size cap "
                            "(max_video_bytes)")
    try:
        info = probe_video(upload)
    finally:
        log_reads("probe", upload)
    check_caps(info, settings)
    width, height = info.display_size
    return VideoInfo(duration_s=info.duration_s, fps=info.fps, frame_count=info.frame_count, width=width,
                     height=height, codec=info.codec, rotation=info.rotation, size_bytes=info.size_bytes,
                     version_id=upload.version_id, read=upload.stats)


def log_reads(step: str, upload: S3RangeFile, **extra) -> None:
    """One log line per step with what reading the upload cost (summed per job from the logs or results)."""
    logger.info("upload read", extra={"step": step, "object": upload.uri, "size_bytes": upload.size,
                                      **upload.stats.model_dump(), **extra})
