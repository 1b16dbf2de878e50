"""StoreVideo: stream the clip into S3 (verified before commit) and write its poster frame.

Nothing is committed for a job that is no longer running: its record must be
RUNNING and its execution too (a StopExecution does not stop this Lambda).
"""

import tempfile
from pathlib import Path

from botocore.exceptions import ClientError

from vidpipe import aws, clock
from vidpipe.generation.events import PollEvent, parse_event, video_provider
from vidpipe.generation.store import source_opener, store_video
from vidpipe.handback import handing_back
from vidpipe.jobs import JobStatus
from vidpipe.media.verify import ExpectedVideo, poster_frame, verify_video
from vidpipe.net.download_guard import DownloadPolicy
from vidpipe.observability import annotate_job, lambda_handler, logger
from vidpipe.runtime import Deps, deps


def verify(path: Path, expected: ExpectedVideo) -> dict:
    """Decodes every frame (OutputInvalid if it cannot); mismatches are reported, not raised."""
    return verify_video(path, expected).model_dump(mode="json")


def why_not_running(d: Deps, job_id: str) -> str | None:
    """None while the job and its execution run; otherwise the reason, one line."""
    job = d.jobs.get(job_id) or {}
    if job.get("status") != JobStatus.RUNNING:
        return f"the job is {job.get('status', 'missing')}, no longer RUNNING"
    arn = job.get("execution_arn")
    if not arn:
        return None
    try:
        status = aws.client("stepfunctions").describe_execution(executionArn=arn)["status"]
    except ClientError as exc:
        return f"its execution cannot be read ({exc.response.get('Error', {}).get('Code', 'error')})"
    return None if status == "RUNNING" else f"its execution is {status}"


@lambda_handler
def handler(event, context):
    with handing_back(context):
        job = parse_event(PollEvent, event)
        annotate_job(job.job_id)
        d = deps()
        s = d.settings
        provider = video_provider(job.poll.provider, d, base_url=job.poll.base_url)  # [ROUTING] the route's
        opener = source_opener(s3=d.s3, bucket=s.media_bucket, policy=DownloadPolicy.from_settings(s),
                               headers_for=provider.download_headers,
                               before_download=lambda: d.accounting.acquire(job.poll.provider))
        with tempfile.TemporaryDirectory() as workdir:
            stored = store_video(job.job_id, job.request, job.poll, s3=d.s3, bucket=s.media_bucket,
                                 prefix=s.video_output_s3_prefix, open_source=opener, verify=verify, poster=poster_frame,
                                 workdir=Path(workdir), max_bytes=s.max_video_bytes, now=clock.now,
                                 still_running=lambda: why_not_running(d, job.job_id))
        if stored.verification.get("mismatches"):
            logger.warning("video differs from the request", extra={"mismatches": stored.verification["mismatches"]})
        return stored.model_dump(mode="json")
