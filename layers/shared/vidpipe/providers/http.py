"""HTTP calls to providers with retries: exponential backoff with full jitter,
Retry-After honoured, non-retryable answers given up on at once.

A retry that would outlast the caller's wait budget is handed back as
``ProviderRetryable`` (with ``retry_after_s``) so Step Functions can retry the
whole step later instead of a Lambda idling on the bill.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from vidpipe.errors import ProviderError, ProviderRetryable

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_total_wait_s: float = 60.0  # total sleeping allowed inside this Lambda call


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """Parse Retry-After (delta-seconds or HTTP-date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_delay(attempt: int, policy: RetryPolicy, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng() * min(policy.max_delay_s, policy.base_delay_s * (2**attempt))


def describe(response: httpx.Response, limit: int = 200) -> str:
    """A short, secret-free description of an error response."""
    text = response.text[:limit].replace("\n", " ") if response.content else ""
    return f"HTTP {response.status_code} from {response.request.url.host}{response.request.url.path}: {text}".strip()


def send_with_retry(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_attempt: Callable[[int], None] | None = None,
    **kwargs,
) -> httpx.Response:
    """Send a request, retrying transient failures. Returns a 2xx/3xx response.

    ``on_attempt(n)`` runs before every attempt (the shared rate limiter hooks in here).
    Raises ProviderError (do not retry) or ProviderRetryable (retry later).
    """
    waited = 0.0
    last_reason = "no attempt made"
    retry_after: float | None = None
    for attempt in range(policy.max_attempts):
        if on_attempt:
            on_attempt(attempt)
        try:
            response = client.request(method, url, **kwargs)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            last_reason, retry_after = f"{type(exc).__name__} calling {httpx.URL(url).host}", None
        else:
            if response.status_code < 400:
                return response
            if response.status_code not in RETRYABLE_STATUS:
                raise ProviderError(describe(response), status=response.status_code)
            last_reason, retry_after = describe(response), retry_after_seconds(response)
        if attempt + 1 == policy.max_attempts:
            break
        delay = backoff_delay(attempt, policy, rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if waited + delay > policy.max_total_wait_s:
            raise ProviderRetryable(f"{last_reason} (retry after {delay:.1f}s exceeds this call's wait budget)",
                                    retry_after_s=delay)
        sleep(delay)
        waited += delay
    raise ProviderRetryable(f"{last_reason} (gave up after {policy.max_attempts} attempts)",
                            retry_after_s=retry_after)
