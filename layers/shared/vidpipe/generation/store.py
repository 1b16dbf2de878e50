"""Store the finished clip: ``outputs/<job_id>/video.mp4`` and ``poster.jpg``.

The clip comes from the provider's download URL (through the SSRF guard) or,
for Bedrock, from the S3 object Bedrock wrote. It is verified before it is
committed: undecodable → OutputInvalid (nothing stored); duration, fps or
resolution off by more than the tolerance → recorded in the outputs, not fatal.

A download can outlive its job (StopExecution, the reaper): ``still_running``
is asked before the download and again right before the clip is committed,
so a job that is no longer RUNNING gets no video.mp4 (the multipart upload
is aborted). A download from the provider takes a slot of the provider's
shared rate limit like any other call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError
from pydantic import BaseModel

from vidpipe.errors import DownloadRefused, ProviderError, ProviderRetryable, VidpipeError
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.state import PollState
from vidpipe.generation.upload import upload_verified
from vidpipe.media.verify import ExpectedVideo
from vidpipe.net.download_guard import DownloadPolicy, Resolver, guarded_stream, system_resolver

CHUNK_BYTES = 1024**2


@dataclass(frozen=True)
class Source:
    chunks: Iterator[bytes]
    expected_bytes: int | None  # from Content-Length / ContentLength, when known


def expected_video(request: GenerateJob) -> ExpectedVideo:
    width, height = request.size
    return ExpectedVideo(duration_s=request.duration_s, fps=request.fps, width=width, height=height)


class StoredObject(BaseModel):
    bucket: str
    key: str
    s3_uri: str
    bytes: int


class StoredVideo(BaseModel):
    video: StoredObject
    poster: StoredObject
    verification: dict[str, Any]  # measured duration/fps/size and any mismatches
    stored_at: float


class JobNotRunning(VidpipeError):
    """The job stopped (or was finalized) while its clip was being stored: nothing is committed."""


OpenSource = Callable[[PollState], AbstractContextManager[Source]]
Verify = Callable[[Path, ExpectedVideo], dict[str, Any]]
Poster = Callable[[Path], bytes]


def store_video(job_id: str, request: GenerateJob, poll: PollState, *, s3: Any, bucket: str, prefix: str,
                open_source: OpenSource, verify: Verify, poster: Poster, workdir: Path, max_bytes: int,
                now: Callable[[], float], still_running: Callable[[], str | None] = lambda: None) -> StoredVideo:
    """``still_running()`` returns None while the job runs, else why it does not (JobNotRunning)."""
    video_key, poster_key = f"{prefix}/{job_id}/video.mp4", f"{prefix}/{job_id}/poster.jpg"
    local = workdir / "video.mp4"
    expected = expected_video(request)

    def require_running() -> None:
        stopped = still_running()
        if stopped:
            raise JobNotRunning(f"not stored: {stopped}")

    def verify_then_confirm(path: Path) -> dict[str, Any]:
        result = verify(path, expected)
        require_running()  # the last moment before the object is committed
        return result

    require_running()
    with open_source(poll) as source:
        size, verification = upload_verified(_interruptible(source.chunks), s3=s3, bucket=bucket, key=video_key,
                                             local_path=local, expected_bytes=source.expected_bytes,
                                             max_bytes=max_bytes, verify=verify_then_confirm)
    jpeg = poster(local)
    s3.put_object(Bucket=bucket, Key=poster_key, Body=jpeg, ContentType="image/jpeg")
    return StoredVideo(video=_stored(bucket, video_key, size), poster=_stored(bucket, poster_key, len(jpeg)),
                       verification=verification, stored_at=now())


def _stored(bucket: str, key: str, size: int) -> StoredObject:
    return StoredObject(bucket=bucket, key=key, s3_uri=f"s3://{bucket}/{key}", bytes=size)


def _interruptible(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A connection dropped mid-body is transient: the step is retried from scratch."""
    try:
        yield from chunks
    except (httpx.TransportError, httpx.StreamError, BotoCoreError) as exc:
        raise ProviderRetryable(f"download interrupted: {type(exc).__name__}") from exc


def source_opener(*, s3: Any, bucket: str, policy: DownloadPolicy,
                  headers_for: Callable[[str], dict[str, str]], http_client: httpx.Client | None = None,
                  resolver: Resolver = system_resolver,
                  before_download: Callable[[], None] = lambda: None) -> OpenSource:
    """Where a completed job's clip is read from: its S3 object or its download URL
    (``before_download`` runs first: the provider's rate limit)."""

    @contextmanager
    def open_source(poll: PollState) -> Iterator[Source]:
        if poll.s3_uri:
            yield _s3_source(s3, poll.s3_uri, bucket)
        elif poll.download_url:
            before_download()
            with guarded_stream(poll.download_url, policy, client=http_client, resolver=resolver,
                                headers_for=headers_for) as response:
                yield Source(response.iter_bytes(CHUNK_BYTES), _content_length(response))
        else:
            raise ProviderError("the provider reported the job complete without a video location")

    return open_source


def _s3_source(s3: Any, uri: str, allowed_bucket: str) -> Source:
    source_bucket, _, key = uri.removeprefix("s3://").partition("/")
    # Bedrock writes where we told it to: our bucket. Anything else is not ours to read.
    if not uri.startswith("s3://") or source_bucket != allowed_bucket or not key:
        raise DownloadRefused(f"refused {uri}: provider output must be in s3://{allowed_bucket}/")
    obj = s3.get_object(Bucket=source_bucket, Key=key)
    return Source(obj["Body"].iter_chunks(CHUNK_BYTES), obj.get("ContentLength"))


def _content_length(response: httpx.Response) -> int | None:
    if response.headers.get("content-encoding", "identity") != "identity":
        return None  # the header counts encoded bytes; iter_bytes yields decoded ones
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
