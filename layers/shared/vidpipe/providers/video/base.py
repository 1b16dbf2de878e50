"""The common shape of an async video-generation provider.

Every adapter turns its API into ``submit`` → ``Submitted``, ``status`` →
``Status`` (one of four states) and ``cancel``; the generation steps never
see a provider's wire format. HTTP adapters share ``HttpVideoProvider``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.http import RetryPolicy, send_with_retry

VideoState = Literal["queued", "processing", "completed", "failed"]

# Seconds of provider work per second of clip when an API gives no ETA
# (Nova Reel documents ~90 s for a 6 s clip); a starting point for polling only.
WORK_SECONDS_PER_CLIP_SECOND = 15.0
MIN_ETA_S = 30.0


def estimated_eta_s(duration_s: float) -> float:
    return max(MIN_ETA_S, WORK_SECONDS_PER_CLIP_SECOND * duration_s)


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    model: str
    mode: str
    duration_s: float
    fps: int
    resolution: str  # "WxH"
    physics: dict[str, float] = field(default_factory=dict)
    output_s3_uri: str | None = None  # where providers that write to S3 themselves put the clip
    # The picture the clip starts from, already fitted to this provider (vidpipe.reference_image).
    reference_image: bytes | None = field(default=None, repr=False)
    reference_image_type: str | None = None  # its MIME type: image/jpeg | image/png


@dataclass(frozen=True)
class Submitted:
    provider_job_id: str
    eta_s: float  # provider seconds until the clip should be ready


@dataclass(frozen=True)
class Status:
    state: VideoState
    progress: float | None = None  # 0..1 when the provider reports it
    eta_s: float | None = None  # seconds left, when the provider reports it
    download_url: str | None = None
    s3_uri: str | None = None
    error: str | None = None


class VideoProvider(ABC):
    name: str

    @classmethod
    def billed_seconds(cls, model: str, duration_s: float) -> float:
        """Clip seconds the provider charges for a requested duration (some round up)."""
        return duration_s

    @abstractmethod
    def submit(self, request: VideoRequest, idempotency_key: str) -> Submitted:
        """Start a job. The same idempotency key must never start a second one."""

    @abstractmethod
    def status(self, provider_job_id: str) -> Status: ...

    @abstractmethod
    def cancel(self, provider_job_id: str) -> Status | None:
        """Ask the provider to stop; returns the job's state in the provider's answer
        (``failed`` once it stopped, ``completed`` if it finished first, and then it is
        billed), or None when the API has no way to cancel."""

    def download_headers(self, url: str) -> dict[str, str]:
        """Headers a download of ``url`` needs (credentials only for the provider's own origin)."""
        return {}

    # [WEBHOOKS] Whether the API pushes signed completion webhooks (Standard Webhooks) that
    # ``announced`` can read (docs/webhooks.md).
    webhooks: bool = False

    def announced(self, provider_job_id: str, announcement: dict) -> Status | None:
        """The job's end as a verified completion webhook tells it ({type, data}), or None when the
        webhook alone cannot say (a status check has to ask)."""
        return None


class HttpVideoProvider(VideoProvider):
    def __init__(self, base_url: str, api_key: str, *, http_client: httpx.Client | None = None,
                 policy: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep,
                 on_attempt: Callable[[int], None] | None = None, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.http = http_client or httpx.Client(timeout=timeout_s)
        self.policy = policy
        self.sleep = sleep
        self.on_attempt = on_attempt

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs) -> dict[str, Any]:
        """The answer's JSON object. An error raised after the request may have reached the
        provider without its answer reaching us (read timeout, cut or garbled body) carries
        ``details["answer_lost"] = True``: for a submit, the provider may hold a job we cannot name."""
        sent = _SentRequests(self.http)
        try:
            response = send_with_retry(sent, method, self.base_url + path, policy=self.policy, sleep=self.sleep,
                                       on_attempt=self.on_attempt, headers={**self._auth(), **(headers or {})},
                                       **kwargs)
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                sent.lost = True
                # Every call here is safe to repeat (submit carries its idempotency key),
                # so a garbled answer is worth another try rather than a failed job.
                raise ProviderRetryable(f"{self.name}: {method} {path} answered HTTP {response.status_code} "
                                        "without a JSON object")
            return body
        except (ProviderError, ProviderRetryable) as exc:
            if sent.lost:
                exc.details["answer_lost"] = True
            raise

    def download_headers(self, url: str) -> dict[str, str]:
        return self._auth() if _origin(httpx.URL(url)) == _origin(httpx.URL(self.base_url)) else {}


class _SentRequests:
    """Wraps the HTTP client to note an attempt whose answer was lost after the request
    may have reached the provider (anything but a connection that was never made)."""

    def __init__(self, http: httpx.Client):
        self.http = http
        self.lost = False

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise  # never reached the provider
        except (httpx.TimeoutException, httpx.TransportError):
            self.lost = True
            raise


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def error_text(value: Any) -> str:
    """A provider's error field (a string or {"message": ...}) as one line."""
    if isinstance(value, dict):
        value = value.get("message") or value.get("code") or value
    return " ".join(str(value).split())[:500] if value else "no reason given"


def fraction(progress: Any) -> float | None:
    """Progress as 0..1 whether the API reports a fraction or a percentage."""
    if isinstance(progress, bool) or not isinstance(progress, (int, float)):
        return None
    value = progress / 100 if progress > 1 else progress
    return min(1.0, max(0.0, float(value)))


def required_str(body: dict[str, Any], key: str, provider: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        # The provider answered 2xx: whatever it did, we cannot tell what it was.
        raise ProviderError(f"{provider}: answer lacks {key!r}", malformed=True, answer_lost=True)
    return value
