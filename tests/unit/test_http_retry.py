"""Provider HTTP retries: full-jitter backoff, Retry-After, give up on what retrying cannot fix."""

import httpx
import pytest

from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.http import RetryPolicy, backoff_delay, retry_after_seconds, send_with_retry


def scripted(*responses):
    """A transport answering with the given (status, headers) or exceptions, in order."""
    queue = list(responses)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers = item
        return httpx.Response(status, headers=headers, json={"ok": status < 400})

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_given_429_with_retry_after_when_sent_then_waits_at_least_retry_after_and_succeeds():
    client, seen = scripted((429, {"Retry-After": "7"}), (200, {}))
    waits = []
    response = send_with_retry(client, "POST", "https://p.example/v1/x", sleep=waits.append, rng=lambda: 0.0)
    assert response.status_code == 200 and len(seen) == 2
    assert waits == [7.0]


def test_given_5xx_and_timeouts_when_sent_then_backs_off_with_full_jitter_then_succeeds():
    client, seen = scripted((503, {}), httpx.ReadTimeout("slow"), (200, {}))
    waits = []
    policy = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=10.0)
    send_with_retry(client, "GET", "https://p.example/s", policy=policy, sleep=waits.append, rng=lambda: 1.0)
    assert waits == [1.0, 2.0]  # rng=1 shows the jitter ceiling: base * 2**attempt


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_given_a_non_retryable_status_when_sent_then_raises_provider_error_after_one_attempt(status):
    client, seen = scripted((status, {}))
    with pytest.raises(ProviderError) as info:
        send_with_retry(client, "POST", "https://p.example/v1/x", sleep=lambda s: None)
    assert len(seen) == 1 and f"HTTP {status}" in info.value.reason


def test_given_retry_after_beyond_the_wait_budget_then_hands_back_retryable_without_sleeping():
    client, seen = scripted((429, {"Retry-After": "120"}))
    waits = []
    with pytest.raises(ProviderRetryable) as info:
        send_with_retry(client, "POST", "https://p.example/v1/x", policy=RetryPolicy(max_total_wait_s=30),
                        sleep=waits.append)
    assert waits == [] and info.value.retry_after_s == 120.0


def test_given_persistent_failures_then_gives_up_after_max_attempts_as_retryable():
    client, seen = scripted(*[(500, {})] * 3)
    with pytest.raises(ProviderRetryable, match="gave up after 3 attempts"):
        send_with_retry(client, "GET", "https://p.example/s", policy=RetryPolicy(max_attempts=3),
                        sleep=lambda s: None)
    assert len(seen) == 3


def test_given_http_date_retry_after_then_parsed_relative_to_now():
    response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"},
                              request=httpx.Request("GET", "https://x"))
    assert retry_after_seconds(response, now=1445412500.0) == 10.0


def test_given_attempt_numbers_then_backoff_is_capped():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0)
    assert [backoff_delay(a, policy, rng=lambda: 1.0) for a in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_given_per_attempt_headers_when_attempts_fail_then_each_is_sent_with_its_own_and_reported_before_the_next():
    client, seen = scripted(httpx.ReadTimeout("slow"), (503, {}), (200, {}))
    events = []

    def headers(attempt):
        events.append(("send", attempt))
        return {"X-Client-Request-Id": f"id-{attempt}"}

    send_with_retry(client, "POST", "https://p.example/v1/x", sleep=lambda s: None, headers={"A": "b"},
                    attempt_headers=headers,
                    on_failed_attempt=lambda n, outcome: events.append(("failed", n, type(outcome).__name__)))

    assert [r.headers["x-client-request-id"] for r in seen] == ["id-0", "id-1", "id-2"]
    assert all(r.headers["a"] == "b" for r in seen)
    assert events == [("send", 0), ("failed", 0, "ReadTimeout"), ("send", 1), ("failed", 1, "Response"), ("send", 2)]


def test_given_a_non_retryable_status_when_sent_then_the_failure_is_reported_before_it_raises():
    client, _ = scripted((401, {}))
    failed = []

    with pytest.raises(ProviderError):
        send_with_retry(client, "POST", "https://p.example/v1/x", sleep=lambda s: None,
                        on_failed_attempt=lambda n, outcome: failed.append(outcome.status_code))

    assert failed == [401]
