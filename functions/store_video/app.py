"""StoreVideo: stream the clip into S3 (verified before commit) and write its poster frame."""

import tempfile
from pathlib import Path

from vidpipe import clock
from vidpipe.generation.events import PollEvent, parse_event, video_provider
from vidpipe.generation.store import source_opener, store_video
from vidpipe.media.verify import ExpectedVideo, poster_frame, verify_video
from vidpipe.net.download_guard import DownloadPolicy
from vidpipe.observability import logger
from vidpipe.runtime import deps


def verify(path: Path, expected: ExpectedVideo) -> dict:
    """Decodes every frame (OutputInvalid if it cannot); mismatches are reported, not raised."""
    return verify_video(path, expected).model_dump(mode="json")


@logger.inject_lambda_context
def handler(event, context):
    job = parse_event(PollEvent, event)
    logger.set_correlation_id(job.job_id)
    d = deps()
    s = d.settings
    provider = video_provider(job.poll.provider, d)
    opener = source_opener(s3=d.s3, bucket=s.media_bucket, policy=DownloadPolicy.from_settings(s),
                           headers_for=provider.download_headers)
    with tempfile.TemporaryDirectory() as workdir:
        stored = store_video(job.job_id, job.request, job.poll, s3=d.s3, bucket=s.media_bucket,
                             prefix=s.video_output_s3_prefix, open_source=opener, verify=verify, poster=poster_frame,
                             workdir=Path(workdir), max_bytes=s.max_video_bytes, now=clock.now)
    if stored.verification.get("mismatches"):
        logger.warning("video differs from the request", extra={"mismatches": stored.verification["mismatches"]})
    return stored.model_dump(mode="json")
