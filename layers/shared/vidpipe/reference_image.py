"""Reference images: the picture a clip starts from (a product photo, a character).

A job's ``reference_image`` is ``s3://<media bucket>/references/<key>`` or an
``https://`` URL. It is checked twice:

- at intake (``url_problem``): the form only. An S3 object must be in the media
  bucket under ``references/`` (the only prefix SubmitGeneration may read); an
  https host must pass the download guard's address checks (no private, internal
  or metadata address unless the host is in DOWNLOAD_ALLOW_HOSTS). A problem
  makes the job REJECTED with the reason.
- where it is used (``fetch`` + ``check``, in SubmitGeneration before any paid
  call): the bytes are fetched (S3 ``get_object`` with a size check; https
  through the download guard, every redirect checked), must be at most 20 MB,
  decode with Pillow, and have each side at most 4096 px. A problem raises
  ``ReferenceImageRejected`` (an ``InputRejected``): the job ends REJECTED with
  the reason (its input never validated), nothing paid.

``prepare`` then fits the image to what the provider accepts (``for_provider``):
the OpenAI videos API wants the reference at the requested video size (it is
the clip's first frame), the generic shape gets the same, Bedrock Nova Reel
takes 1280x720 PNG or JPEG. Fitting is "cover": scaled to fill, centre-cropped.

Identity: the job's execution name covers the reference's URI, so the same prompt
with another image is another job; ``reference_key`` gives local files a
content-addressed key (``references/<sha256 prefix>/<name>``), so another photo
is always another URI. The sha256 of the bytes sent is logged with the submit.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import ClientError

from vidpipe.errors import DownloadRefused, InputRejected, ProviderError
from vidpipe.net.download_guard import DownloadPolicy, Resolver, check_target, guarded_stream, system_resolver
from vidpipe.s3_errors import check_access, is_missing

MAX_BYTES = 20 * 1024 * 1024
MAX_SIDE = 4096
REFERENCES_PREFIX = "references/"
NOVA_REEL_SIZE = (1280, 720)
JPEG_QUALITY = 90
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
_S3 = re.compile(r"s3://([^/]+)/(.+)", re.DOTALL)


class ReferenceImageRejected(InputRejected):
    """The job's reference image is unusable: finalize records the job REJECTED, not FAILED."""


@dataclass(frozen=True)
class ReferenceImage:
    """A fetched and checked image, as the job's owner supplied it."""

    source: str  # the URI from the job
    data: bytes
    width: int
    height: int
    format: str  # Pillow's name: JPEG, PNG, WEBP...

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class PreparedImage:
    """The bytes a provider receives."""

    data: bytes
    mime_type: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# ---------------------------------------------------------------- intake


def url_problem(value: str, *, media_bucket: str, policy: DownloadPolicy,
                resolver: Resolver = system_resolver) -> str | None:
    """Why ``value`` may not be a reference image, or None. Reads nothing."""
    match = _S3.fullmatch(value)
    if match:
        bucket, key = match.groups()
        if bucket != media_bucket:
            return f"s3 bucket {bucket!r} is not the media bucket {media_bucket}"
        if not key.startswith(REFERENCES_PREFIX):
            return f"s3 key {key[:200]!r} is not under {REFERENCES_PREFIX} (the only prefix generation may read)"
        return None
    try:
        check_target(value, policy, resolver)
    except DownloadRefused as exc:
        return exc.reason
    return None


# ---------------------------------------------------------------- fetch and check


def fetch(uri: str, *, s3: Any, media_bucket: str, policy: DownloadPolicy,
          http_client: httpx.Client | None = None, resolver: Resolver = system_resolver) -> ReferenceImage:
    """The checked image at ``uri``; InputRejected (readable reason) for anything wrong with it.

    A transient failure of the image's host (5xx, timeout) stays ProviderRetryable."""
    problem = url_problem(uri, media_bucket=media_bucket, policy=policy, resolver=resolver)
    if problem:
        raise ReferenceImageRejected(f"reference_image: {problem}")
    match = _S3.fullmatch(uri)
    data = _from_s3(s3, *match.groups()) if match else _from_https(uri, policy, http_client, resolver)
    return check(uri, data)


def check(source: str, data: bytes) -> ReferenceImage:
    """Decodes, ≤ MAX_BYTES, each side ≤ MAX_SIDE: else InputRejected."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_BYTES:
        raise ReferenceImageRejected(f"reference_image: {_mb(len(data))} is larger than the {_mb(MAX_BYTES)} limit")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size  # from the header: checked before any pixel is decoded
            if max(width, height) > MAX_SIDE:
                raise ReferenceImageRejected(f"reference_image: {width}x{height} px; each side must be at most {MAX_SIDE} px")
            image.load()
            fmt = image.format or "unknown"
    except InputRejected:
        raise
    except UnidentifiedImageError:
        raise ReferenceImageRejected(f"reference_image: not a decodable image ({len(data)} bytes in no image format "
                            "Pillow reads)") from None
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ReferenceImageRejected(f"reference_image: not a decodable image ({str(exc)[:200] or type(exc).__name__})") from None
    return ReferenceImage(source=source, data=data, width=width, height=height, format=fmt)


def _from_s3(s3: Any, bucket: str, key: str) -> bytes:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            raise ReferenceImageRejected(f"reference_image: s3://{bucket}/{key} does not exist") from None
        check_access(exc, "s3:GetObject", bucket, key)
        raise
    size = int(response.get("ContentLength") or 0)
    body = response["Body"]
    try:
        if size > MAX_BYTES:
            raise ReferenceImageRejected(f"reference_image: {_mb(size)} is larger than the {_mb(MAX_BYTES)} limit")
        return body.read(MAX_BYTES + 1)
    finally:
        body.close()


def _from_https(url: str, policy: DownloadPolicy, client: httpx.Client | None, resolver: Resolver) -> bytes:
    try:
        with guarded_stream(url, policy, client=client, resolver=resolver) as response:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > MAX_BYTES:
                raise ReferenceImageRejected(f"reference_image: {_mb(int(declared))} is larger than the "
                                    f"{_mb(MAX_BYTES)} limit")
            received = bytearray()
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) > MAX_BYTES:
                    raise ReferenceImageRejected(f"reference_image: more than the {_mb(MAX_BYTES)} limit")
            return bytes(received)
    except DownloadRefused as exc:  # a private address, also one reached by a redirect
        raise ReferenceImageRejected(f"reference_image: {exc.reason}") from None
    except ProviderError as exc:  # 4xx: the URL is wrong, not the host unwell
        raise ReferenceImageRejected(f"reference_image: {exc.reason}") from None


def _mb(size: int) -> str:
    return f"{size / 1024**2:.1f} MB"


def load(uri: str | None, deps: Any, *, http_client: httpx.Client | None = None,
         resolver: Resolver = system_resolver) -> ReferenceImage | None:
    """A handler's one call: the job's reference image from Settings and the deps' S3 client (None: none)."""
    if uri is None:
        return None
    from vidpipe.observability import logger

    settings = deps.settings
    image = fetch(uri, s3=deps.s3, media_bucket=settings.media_bucket, policy=DownloadPolicy.from_settings(settings),
                  http_client=http_client, resolver=resolver)
    logger.info("reference image fetched", extra={"reference_sha256": image.sha256, "reference_bytes": len(image.data),
                                                  "reference_size": f"{image.width}x{image.height}"})
    return image


# ---------------------------------------------------------------- fit to the provider


def target_size(provider: str, model: str, resolution: str) -> tuple[int, int]:
    """The size the provider accepts a reference at."""
    if provider == "bedrock" and model.startswith("amazon.nova-reel"):
        return NOVA_REEL_SIZE
    width, height = resolution.split("x")
    return int(width), int(height)


def prepare(image: ReferenceImage, size: tuple[int, int]) -> PreparedImage:
    """Scale to cover ``size``, centre-crop to it; JPEG stays JPEG, anything else becomes PNG (RGB)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(image.data)) as opened:
        rgb = ImageOps.exif_transpose(opened).convert("RGB")
    fitted = ImageOps.fit(rgb, size, method=Image.Resampling.LANCZOS)
    fmt = "JPEG" if image.format == "JPEG" else "PNG"
    out = io.BytesIO()
    fitted.save(out, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
    return PreparedImage(data=out.getvalue(), mime_type=MIME_TYPES[fmt], width=size[0], height=size[1])


def for_provider(image: ReferenceImage | None, provider: str, model: str, resolution: str) -> dict[str, Any]:
    """VideoRequest fields for ``image`` fitted to ``provider``; {} without an image."""
    if image is None:
        return {}
    prepared = prepare(image, target_size(provider, model, resolution))
    return {"reference_image": prepared.data, "reference_image_type": prepared.mime_type}


# ---------------------------------------------------------------- local files


def reference_key(data: bytes, filename: str) -> str:
    """A content-addressed key under references/: another image is another key (and job)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", filename.rsplit("/", 1)[-1])[-100:] or "image"
    return f"{REFERENCES_PREFIX}{hashlib.sha256(data).hexdigest()[:32]}/{name}"
