"""Stream bytes into one S3 object that either appears whole and verified, or not at all.

Chunks go to a local file (for verification) and, once a part's worth has
arrived, to an S3 multipart upload, so a large clip is never held in memory.
A clip smaller than one part is put in a single request after the full,
length-checked download. Verification runs before the object is committed
(the multipart upload completed, or the single put made); any failure aborts
the multipart upload, so no half-written or undecodable object is ever visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from vidpipe.errors import OutputInvalid, ProviderRetryable
from vidpipe.observability import logger

T = TypeVar("T")

PART_SIZE = 8 * 1024**2  # S3 needs ≥ 5 MiB for every part but the last


def upload_verified(chunks: Iterable[bytes], *, s3: Any, bucket: str, key: str, local_path: Path,
                    expected_bytes: int | None, max_bytes: int, verify: Callable[[Path], T],
                    content_type: str = "video/mp4", part_size: int = PART_SIZE) -> tuple[int, T]:
    """Returns (bytes written, verify's result). Raises ProviderRetryable when the
    source ended short of ``expected_bytes``, OutputInvalid when it is empty or too big."""
    upload_id: str | None = None
    parts: list[dict] = []
    pending = bytearray()
    size = 0

    def send_part() -> None:
        nonlocal upload_id
        if upload_id is None:
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        number = len(parts) + 1
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=bytes(pending))["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
        pending.clear()

    try:
        with local_path.open("wb") as local:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise OutputInvalid(f"the video is larger than the {max_bytes}-byte cap")
                local.write(chunk)
                pending += chunk
                if len(pending) >= part_size:
                    send_part()
        if expected_bytes is not None and size != expected_bytes:
            raise ProviderRetryable(f"download truncated: got {size} of {expected_bytes} bytes")
        if size == 0:
            raise OutputInvalid("the provider delivered an empty video")
        result = verify(local_path)
        if upload_id is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(pending), ContentType=content_type)
        else:
            if pending:
                send_part()
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
        return size, result
    except BaseException:
        if upload_id is not None:
            _abort(s3, bucket, key, upload_id)
        raise


def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # the original error matters more; the bucket lifecycle rule cleans up
        logger.warning("abort_multipart_upload failed", extra={"key": key, "error": type(exc).__name__})
