import threading
from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE, SimulatedTime
from vidpipe.errors import InputRejected, RateLimited
from vidpipe.spend.ratelimit import Bucket, RateLimiter
from vidpipe_local.clock import VirtualClock


@pytest.fixture
def clock():
    return VirtualClock(T0)


def limiter(ddb, clock, rpm=60, tpm=1_000_000):
    return RateLimiter(TABLE, rpm=rpm, tpm=tpm, client=ddb, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("limit", [1, 2, 60, 1_000, 1_000_000])
def test_given_a_per_minute_limit_when_sized_then_burst_plus_a_minute_of_refill_stays_within_it(limit):
    bucket = Bucket.for_limit(limit, Decimal("0.1"))

    assert 1 <= bucket.capacity <= limit
    # admitted in [t, t + 60 s) < capacity + 60 × rate = limit + 1
    assert bucket.capacity + 60 * bucket.per_second == limit + 1


def test_given_a_full_bucket_when_the_burst_is_spent_then_the_next_call_waits_for_the_refill(ddb, clock):
    rl = limiter(ddb, clock)  # 60 rpm: burst 6, then one request every 60/55 s

    assert [rl.acquire("openai") for _ in range(6)] == [0.0] * 6
    assert rl.acquire("openai") == pytest.approx(1.091)
    assert clock.now() == pytest.approx(T0 + 1.091)


def test_given_an_empty_bucket_when_the_wait_exceeds_the_callers_limit_then_it_is_rate_limited_with_retry_after(
        ddb, clock):
    rl = limiter(ddb, clock)
    for _ in range(6):
        rl.acquire("openai")

    with pytest.raises(RateLimited) as limited:
        rl.acquire("openai", max_wait_s=1.0)

    assert limited.value.retry_after_s == pytest.approx(1.091)
    assert limited.value.reason.startswith("rate limit openai (60 rpm, 1000000 tpm): next slot in 1.091s")
    assert clock.now() == T0  # it did not sleep
    clock.advance(limited.value.retry_after_s)
    assert rl.acquire("openai", max_wait_s=0) == 0.0  # the refused call took nothing


def test_given_a_token_budget_when_a_call_needs_more_tokens_than_left_then_it_waits_for_them(ddb, clock):
    rl = limiter(ddb, clock, tpm=6_000)  # token burst 600, refill 5401/60 per second

    assert rl.acquire("google", tokens=500) == 0.0
    assert rl.acquire("google", tokens=500) == pytest.approx(4.444)  # 400 tokens short


def test_given_a_call_larger_than_the_token_bucket_when_acquired_then_it_is_rejected_up_front(ddb, clock):
    with pytest.raises(InputRejected, match="30000 tokens exceeds google's token bucket of 3000"):
        limiter(ddb, clock, tpm=30_000).acquire("google", tokens=30_000)


def test_given_one_provider_exhausted_when_another_is_called_then_it_is_not_slowed(ddb, clock):
    rl = limiter(ddb, clock)
    for _ in range(6):
        rl.acquire("openai")

    assert rl.acquire("google", max_wait_s=0) == 0.0


def test_given_a_lambda_whose_clock_lags_when_it_reads_the_bucket_then_it_gets_no_refill(ddb):
    ahead, behind = VirtualClock(T0 + 10), VirtualClock(T0 + 5)
    for _ in range(6):
        limiter(ddb, ahead).acquire("openai")

    with pytest.raises(RateLimited) as limited:
        limiter(ddb, behind).acquire("openai", max_wait_s=0)

    # the slot is 1.091 s after the drain, which the lagging clock reaches 5 s later
    assert limited.value.retry_after_s == pytest.approx(6.091)


def test_given_callers_queued_when_each_books_a_slot_then_they_are_served_in_order_a_slot_apart(ddb, clock):
    rl = limiter(ddb, clock)
    for _ in range(6):
        rl.acquire("openai")
    asleep = []
    queued = RateLimiter(TABLE, rpm=60, tpm=1_000_000, client=ddb, clock=clock, sleep=asleep.append)

    waits = [queued.acquire("openai") for _ in range(3)]  # the clock stands still: nobody has slept yet

    assert waits == asleep == pytest.approx([1.091, 2.182, 3.273], abs=0.002)


def test_given_20_concurrent_callers_against_60_rpm_when_they_call_then_no_minute_exceeds_60_and_none_is_lost(
        ddb, atomic_requests):
    callers, calls_each = 20, 6
    time = SimulatedTime(T0, participants=callers)
    rl = RateLimiter(TABLE, rpm=60, tpm=1_000_000, client=ddb, clock=time, sleep=time.sleep)
    admitted: list[float] = []
    refusals: list[RateLimited] = []

    def caller():
        try:
            for _ in range(calls_each):
                while True:
                    try:
                        rl.acquire("openai", tokens=800, max_wait_s=10)
                        admitted.append(time.now())
                        break
                    except RateLimited as limited:  # handed back: Step Functions retries after retry_after
                        refusals.append(limited)
                        time.sleep(limited.retry_after_s)
        finally:
            time.leave()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert len(admitted) == callers * calls_each
    assert refusals and all(r.retry_after_s > 0 and "openai" in r.reason for r in refusals)
    admitted.sort()
    busiest = max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted)
    assert 55 <= busiest <= 60
