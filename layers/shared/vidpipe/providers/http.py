"""HTTP calls to providers with retries: exponential backoff with full jitter,
Retry-After honoured, non-retryable answers given up on at once.

A retry that would outlast the caller's wait budget is handed back as
``ProviderRetryable`` (with ``retry_after_s``) so Step Functions can retry the
whole step later instead of a Lambda idling on the bill.

The step's deadline (``vidpipe.deadline.current()``) bounds it all: each
attempt's timeout is cut to the time the step has left, an attempt is not
started with less than the deadline's minimum left, and a backoff that would
eat into that minimum is not slept; either way the call is handed back as
ProviderRetryable before the Lambda's timeout can kill it.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from vidpipe import deadline
from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.observability import provider_call
from vidpipe.redaction import redact

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
    """A short, secret-free description of an error response.

    The whole body is redacted before it is cut, so a key the provider echoes
    (``Incorrect API key provided: sk-…``) cannot survive half-cut at the limit.
    """
    text = redact(response.text).replace("\n", " ")[:limit] if response.content else ""
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
    attempt_headers: Callable[[int], Mapping[str, str]] | None = None,
    on_failed_attempt: Callable[[int, httpx.Response | Exception], None] | None = None,
    **kwargs,
) -> httpx.Response:
    """Send a request, retrying transient failures. Returns a 2xx/3xx response.

    ``on_attempt(n)`` runs before every attempt (the shared rate limiter hooks in here),
    then ``attempt_headers(n)`` gives headers for that attempt alone (a client request
    id, new per attempt). ``on_failed_attempt(n, response_or_error)`` sees every attempt
    that failed (HTTP status >= 400 or a transport error) before it is retried or given
    up on, so each attempt can be accounted on its own.
    Raises ProviderError (do not retry) or ProviderRetryable (retry later).
    """
    waited = 0.0
    last_reason = "no attempt made"
    retry_after: float | None = None
    limit = deadline.current()
    for attempt in range(policy.max_attempts):
        _check_time_left(limit, url, attempt, last_reason)
        if on_attempt:
            on_attempt(attempt)
        _check_time_left(limit, url, attempt, last_reason)  # on_attempt may have waited for a rate slot
        attempt_kwargs = kwargs
        if limit.bounded:
            attempt_kwargs = {**kwargs, "timeout": attempt_timeout(client, limit, kwargs.get("timeout"))}
        if attempt_headers:
            attempt_kwargs = {**attempt_kwargs,
                              "headers": {**(kwargs.get("headers") or {}), **attempt_headers(attempt)}}
        body = attempt_kwargs.get("json")
        try:
            with provider_call(method, url, body.get("model") if isinstance(body, dict) else None) as report:
                response = client.request(method, url, **attempt_kwargs)
                report(response.status_code)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if on_failed_attempt:
                on_failed_attempt(attempt, exc)
            last_reason, retry_after = f"{type(exc).__name__} calling {httpx.URL(url).host}", None
        else:
            if response.status_code < 400:
                return response
            if on_failed_attempt:
                on_failed_attempt(attempt, response)
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
        if delay > limit.wait_budget_s():
            raise ProviderRetryable(f"{last_reason} (retry after {delay:.1f}s: not enough of this step's time "
                                    "left to wait and try again)", retry_after_s=delay)
        sleep(delay)
        waited += delay
    raise ProviderRetryable(f"{last_reason} (gave up after {policy.max_attempts} attempts)",
                            retry_after_s=retry_after)


def attempt_timeout(client: httpx.Client, limit: deadline.Deadline, requested=None) -> httpx.Timeout:
    """The client's (or the request's) timeout with every phase cut to the step's time left.

    Timeouts are configured in the function's seconds (real seconds on AWS); a socket
    counts real seconds, which the local stack's clock may count many times over."""
    if isinstance(requested, httpx.Timeout):
        base = requested
    elif requested is not None:
        base = httpx.Timeout(requested)
    else:  # the client's own, or the one it wraps (a client that notes lost answers, say)
        base = getattr(client, "timeout", None) or getattr(getattr(client, "http", None), "timeout", None)
        base = base if isinstance(base, httpx.Timeout) else httpx.Timeout(None)
    budget = limit.budget_s()

    def cut(value: float | None) -> float:  # the function's clock seconds, as real seconds for the socket
        return limit.real_seconds(budget if value is None else min(value, budget))

    return httpx.Timeout(connect=cut(base.connect), read=cut(base.read), write=cut(base.write), pool=cut(base.pool))


def _check_time_left(limit: deadline.Deadline, url: str, attempt: int, last_reason: str) -> None:
    """Hand back (ProviderRetryable, come back at once) when no attempt fits in the step's time left."""
    if limit.can_attempt():
        return
    host = httpx.URL(url).host
    why = f"; the last attempt: {last_reason}" if attempt else ""
    raise ProviderRetryable(f"out of time for a request to {host}: {limit.budget_s():.1f} s of the step left, "
                            f"an attempt needs {limit.min_attempt_s:g} s{why}", retry_after_s=1.0, out_of_time=True)
