"""The Probe step: is the upload a decodable video within the caps?

The size cap is checked on the object's metadata first, so an oversize
upload is refused without being downloaded. Everything here runs before any
provider call, so a bad input costs nothing but this step.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

from botocore.exceptions import ClientError

from vidpipe.analysis.models import ProbeEvent, VideoInfo
from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe.media.probe import check_caps, probe_video


@contextmanager
def downloaded(s3, bucket: str, key: str, suffix: str = ""):
    """The object in a temporary file under /tmp, removed afterwards."""
    fd, path = tempfile.mkstemp(suffix=suffix or os.path.splitext(key)[1][:16])
    os.close(fd)
    try:
        s3.download_file(bucket, key, path)
        yield path
    finally:
        os.unlink(path)


def object_size(s3, bucket: str, key: str) -> int:
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as exc:
        # 403: without s3:ListBucket, S3 hides a missing key behind "forbidden".
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
            raise InputRejected(f"the upload s3://{bucket}/{key} no longer exists") from exc
        raise


def probe_upload(event: ProbeEvent, s3, settings: Settings) -> VideoInfo:
    size = object_size(s3, event.bucket, event.key)
    if size > settings.max_video_bytes:
        raise InputRejected(f"the file is {size} bytes, over the {settings.max_video_bytes}-byte size cap "
                            "(max_video_bytes)")
    with downloaded(s3, event.bucket, event.key) as path:
        info = probe_video(path)
    check_caps(info, settings)
    width, height = info.display_size
    return VideoInfo(duration_s=info.duration_s, fps=info.fps, frame_count=info.frame_count, width=width,
                     height=height, codec=info.codec, rotation=info.rotation, size_bytes=info.size_bytes)
