"""A seekable, read-only file over one version of an S3 object, read by ranged GETs.

PyAV reads Python file objects through ``read``/``seek``/``tell``, so the
demuxer pulls only the bytes it needs: the container's header and index
(``moov``, wherever it is) and the packets of the part being decoded. Bytes
come from S3 in aligned blocks; the last few blocks are kept (LRU), so the
demuxer's short back-and-forth seeks (index at the end, data at the start) do
not turn into more requests.

The object is pinned to one version: the version id given, or the one a HEAD
saw when none was given. Without a version id (an unversioned bucket) every
GET carries ``If-Match`` with the ETag the HEAD saw, so an overwrite while the
file is open fails loudly instead of mixing bytes from two videos.

``stats`` counts what reading cost (bytes transferred, GET and HEAD requests),
for the step's result and log.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from typing import NoReturn

from botocore.exceptions import ClientError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError
from pydantic import BaseModel

from vidpipe.errors import InputRejected
from vidpipe.s3_errors import check_access, is_missing

MIN_BLOCK_BYTES = 16 * 1024
MAX_BLOCK_BYTES = 1024 * 1024
BLOCKS_PER_READ = 16  # a step's expected read in about this many GETs, within the bounds above
CACHED_BLOCKS = 8
BODY_READ_ATTEMPTS = 3  # botocore retries the request, not a body cut off mid-stream


class ReadStats(BaseModel):
    """What reading an upload cost one step."""

    bytes_read: int = 0  # bytes S3 sent (whole blocks, so a little more than the demuxer asked for)
    get_requests: int = 0
    head_requests: int = 0


def block_size_for(expected_bytes: int) -> int:
    """About 1/16 of what a step expects to read, rounded up to 16 KiB, within 16 KiB..1 MiB.

    Small enough that the blocks straddling a segment's edges, the file's start and its index
    add little to the segment's own bytes; large enough that a big segment costs tens of GETs,
    not thousands."""
    target = -(-max(expected_bytes, 1) // BLOCKS_PER_READ)
    rounded = -(-target // MIN_BLOCK_BYTES) * MIN_BLOCK_BYTES
    return max(MIN_BLOCK_BYTES, min(MAX_BLOCK_BYTES, rounded))


class S3RangeFile(io.RawIOBase):
    """``open_s3_object`` builds one; read it like a local binary file."""

    def __init__(self, s3, bucket: str, key: str, *, size: int, version_id: str | None = None,
                 etag: str | None = None, block_size: int | None = None, cached_blocks: int = CACHED_BLOCKS,
                 stats: ReadStats | None = None):
        super().__init__()
        self.s3, self.bucket, self.key = s3, bucket, key
        self.size, self.version_id, self.etag = size, version_id, etag
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.block_size = block_size or block_size_for(size)
        self.cached_blocks = max(1, cached_blocks)
        self.stats = stats or ReadStats()
        self._pos = 0

    @property
    def block_size(self) -> int:
        return self._block_size

    @block_size.setter
    def block_size(self, value: int) -> None:
        """Bytes per GET. Changing it forgets the cached blocks (they were cut to the old size)."""
        self._block_size = max(1, value)
        self._blocks.clear()

    @property
    def uri(self) -> str:
        version = f" (version {self.version_id})" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{version}"

    # --- io.RawIOBase ---------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            position = offset
        elif whence == os.SEEK_CUR:
            position = self._pos + offset
        elif whence == os.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"unsupported whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._pos = position
        return position

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        parts = []
        while self._pos < end:
            index, offset = divmod(self._pos, self.block_size)
            block = self._block(index)
            part = block[offset:offset + end - self._pos]
            if not part:
                break  # the object is shorter than its HEAD said
            parts.append(part)
            self._pos += len(part)
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    # --- blocks ---------------------------------------------------------------------------

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        block = self._fetch(index * self.block_size, min(self.size, (index + 1) * self.block_size) - 1)
        self._blocks[index] = block
        if len(self._blocks) > self.cached_blocks:
            self._blocks.popitem(last=False)
        return block

    def _fetch(self, first: int, last: int) -> bytes:
        request = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={first}-{last}"}
        if self.version_id:
            request["VersionId"] = self.version_id
        elif self.etag:
            request["IfMatch"] = self.etag
        for attempt in range(1, BODY_READ_ATTEMPTS + 1):
            self.stats.get_requests += 1
            try:
                body = self.s3.get_object(**request)["Body"].read()
            except (IncompleteReadError, ReadTimeoutError, ResponseStreamingError):
                if attempt == BODY_READ_ATTEMPTS:
                    raise
                continue
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                    raise InputRejected(f"{self.uri} was replaced while it was being read; "
                                        "the new upload is analysed by its own job") from exc
                _raise_for(exc, self.bucket, self.key, self.version_id)
            self.stats.bytes_read += len(body)
            return body
        raise AssertionError("unreachable")


def open_s3_object(s3, bucket: str, key: str, version_id: str | None = None, *, size: int | None = None,
                   block_size: int | None = None, stats: ReadStats | None = None) -> S3RangeFile:
    """The object as a seekable file, pinned to ``version_id`` (or the version a HEAD finds now).

    With both ``version_id`` and ``size`` known nothing is requested until the first read. A missing
    object or version is ``InputRejected``; a refused one is ``S3AccessDenied`` naming the action.
    """
    stats = stats or ReadStats()
    etag = None
    if size is None or not version_id:
        request = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        stats.head_requests += 1
        try:
            head = s3.head_object(**request)
        except ClientError as exc:
            _raise_for(exc, bucket, key, version_id)
        size = head["ContentLength"]
        version_id = version_id or _real_version(head.get("VersionId"))
        etag = head.get("ETag")
    return S3RangeFile(s3, bucket, key, size=size, version_id=version_id, etag=etag, block_size=block_size,
                       stats=stats)


def _real_version(version_id: str | None) -> str | None:
    """S3 says "null" for objects written while versioning was off: such a version is read by its ETag."""
    return None if not version_id or version_id == "null" else version_id


def _raise_for(exc: ClientError, bucket: str, key: str, version_id: str | None) -> NoReturn:
    # Reading a given version takes s3:GetObjectVersion, the latest one s3:GetObject (HEAD included).
    check_access(exc, "s3:GetObjectVersion" if version_id else "s3:GetObject", bucket, key)
    if is_missing(exc):
        version = f" (version {version_id})" if version_id else ""
        raise InputRejected(f"the upload s3://{bucket}/{key}{version} no longer exists") from exc
    raise exc
