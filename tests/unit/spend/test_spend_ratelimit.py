import inspect
import json
import random
import threading
from pathlib import Path

import pytest

from spend_testkit import T0, TABLE, SimulatedTime
from vidpipe.deadline import retry_after_whole_s
from vidpipe.errors import InputRejected, RateLimited
from vidpipe.spend.accounting import DynamoAccounting
from vidpipe.spend import ratelimit
from vidpipe.spend.ratelimit import RateLimiter
from vidpipe_local.clock import VirtualClock
from vidpipe_local.stack.template import load_template

TEMPLATE_DEFAULTS = {name: spec.get("Default") for name, spec in
                     load_template(Path(__file__).resolve().parents[3] / "template.yaml")["Parameters"].items()}


@pytest.fixture
def clock():
    return VirtualClock(T0)


def limiter(ddb, clock, rpm=60, tpm=1_000_000):
    return RateLimiter(TABLE, rpm=rpm, tpm=tpm, client=ddb, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("limit", [1, 3, 12])
def test_given_a_per_minute_limit_when_a_caller_takes_every_slot_then_no_minute_admits_more_than_the_limit(
        ddb, clock, limit):
    rl = limiter(ddb, clock, rpm=limit)
    admitted = []

    while clock.now() < T0 + 300:  # five minutes of a caller that never lets a slot go by
        rl.acquire("openai", max_wait_s=3600)
        admitted.append(clock.now())

    assert busiest_window(admitted) <= limit  # windows closed at both ends, as a provider may count
    assert len(admitted) >= 4 * limit  # and the limit is not met by starving the caller


def busiest_window(times: list[float], width: float = 60.0, lateness: list[float] | None = None) -> int:
    """The most requests any closed window [t, t + width] holds, counted when they arrive
    (slot + lateness)."""
    arrivals = sorted(t + (late if lateness else 0.0) for t, late in zip(times, lateness or [0.0] * len(times)))
    return max(sum(1 for t in arrivals if start <= t <= start + width) for start in arrivals)


@pytest.mark.parametrize("limit", [1, 3, 60])
def test_given_requests_that_reach_the_provider_up_to_a_second_late_when_a_caller_takes_every_slot_then_no_minute_holds_more_than_the_limit(
        ddb, clock, limit):
    # Measured before the margin: at 3 rpm the slots fell 20 s apart, so the closed window
    # [0 s, 60 s] held 4, and a request that arrived late put a 5th in a window.
    rl = limiter(ddb, clock, rpm=limit)
    admitted = []
    while clock.now() < T0 + 600:
        rl.acquire("openai", max_wait_s=3600)
        admitted.append(clock.now())
    # The worst arrival pattern: the earlier requests of a run late, the later ones on time.
    lateness = [1.0 if n % (limit + 1) == 0 else 0.0 for n in range(len(admitted))]

    assert busiest_window(admitted, lateness=lateness) <= limit
    assert busiest_window(admitted, lateness=[1.0 - late for late in lateness]) <= limit


def test_given_a_full_bucket_when_the_burst_is_spent_then_the_next_call_waits_for_the_refill(ddb, clock):
    rl = limiter(ddb, clock)  # 60 rpm: burst 6, then one request every 62/55 s

    assert [rl.acquire("openai") for _ in range(6)] == [0.0] * 6
    assert rl.acquire("openai") == pytest.approx(1.128)
    assert clock.now() == pytest.approx(T0 + 1.128)


def test_given_an_empty_bucket_when_the_wait_exceeds_the_callers_limit_then_it_is_rate_limited_with_retry_after(
        ddb, clock):
    rl = limiter(ddb, clock)
    for _ in range(6):
        rl.acquire("openai")

    with pytest.raises(RateLimited) as limited:
        rl.acquire("openai", max_wait_s=1.0)

    assert limited.value.retry_after_s == pytest.approx(1.128)
    assert limited.value.reason.startswith("rate limit openai (60 rpm, 1000000 tpm): next slot in 1.128s")
    assert clock.now() == T0  # it did not sleep
    clock.advance(limited.value.retry_after_s)
    assert rl.acquire("openai", max_wait_s=0) == 0.0  # the refused call took nothing


def test_given_a_token_budget_when_a_call_needs_more_tokens_than_left_then_it_waits_for_them(ddb, clock):
    rl = limiter(ddb, clock, tpm=6_000)  # token burst 600, refill 5401/60 per second

    assert rl.acquire("google", tokens=500) == 0.0
    assert rl.acquire("google", tokens=500) == pytest.approx(4.592)  # 400 tokens short at 5401/62 a second


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

    # the slot is 1.128 s after the drain, which the lagging clock reaches 5 s later
    assert limited.value.retry_after_s == pytest.approx(6.128)


def test_given_callers_queued_when_each_books_a_slot_then_they_are_served_in_order_a_slot_apart(ddb, clock):
    rl = limiter(ddb, clock)
    for _ in range(6):
        rl.acquire("openai")
    asleep = []
    queued = RateLimiter(TABLE, rpm=60, tpm=1_000_000, client=ddb, clock=clock, sleep=asleep.append)

    waits = [queued.acquire("openai") for _ in range(3)]  # the clock stands still: nobody has slept yet

    assert waits == asleep == pytest.approx([1.128, 2.255, 3.382], abs=0.002)


class RacingClient:
    """A DynamoDB client where another Lambda books the bucket between this caller's read and
    its conditional write, ``races`` times."""

    def __init__(self, ddb, rival: RateLimiter, races: int):
        self.ddb, self.rival, self.races = ddb, rival, races

    def get_item(self, **kwargs):
        return self.ddb.get_item(**kwargs)

    def put_item(self, **kwargs):
        if self.races:
            self.races -= 1
            self.rival.acquire("openai", max_wait_s=60)
        return self.ddb.put_item(**kwargs)


def test_given_callers_that_lose_the_race_for_the_bucket_when_they_retry_then_they_back_off_with_growing_jitter(
        ddb, clock):
    slept = []
    rl = RateLimiter(TABLE, rpm=600, tpm=1_000_000, client=RacingClient(ddb, limiter(ddb, clock, rpm=600), races=5),
                     clock=clock, sleep=slept.append)

    waited = rl.acquire("openai")

    assert len(slept) == 5  # one backoff per lost race, none for the booking (the burst has room)
    assert all(0 <= backoff <= min(ratelimit.CONFLICT_BACKOFF_CAP_S, ratelimit.CONFLICT_BACKOFF_BASE_S * 2 ** n)
               for n, backoff in enumerate(slept, start=1))
    assert waited == pytest.approx(sum(slept))


def test_given_backoffs_after_lost_races_when_they_and_the_slot_exceed_the_callers_wait_then_it_is_rate_limited(
        ddb, clock, monkeypatch):
    monkeypatch.setattr(ratelimit.random, "uniform", lambda low, high: high)  # the longest backoffs
    backoffs = sum(ratelimit.CONFLICT_BACKOFF_BASE_S * 2 ** n for n in (1, 2, 3))  # 0.7 s
    for _ in range(6):  # 60 rpm: the burst of 6 spent, then a slot every 1.128 s
        limiter(ddb, clock).acquire("openai")
    rival = RateLimiter(TABLE, rpm=60, tpm=1_000_000, client=ddb, clock=clock, sleep=lambda seconds: None)
    rl = RateLimiter(TABLE, rpm=60, tpm=1_000_000, client=RacingClient(ddb, rival, races=3), clock=clock,
                     sleep=clock.sleep)

    # Its slot, the 4th in the queue, is 4.51 s away: 3.81 s after its backoffs, 4.51 s in all.
    with pytest.raises(RateLimited, match="this call may wait"):
        rl.acquire("openai", max_wait_s=4.0)
    assert clock.now() == pytest.approx(T0 + backoffs)


def come_back_regime(task: str = "AnalyzeChunk") -> dict:
    """What the analysis ASL does when a chunk hands back RateLimited: its Catch, how long
    its Wait lasts (ComeBackLater) and when it gives up (CanComeBack), read from the file."""
    asl = json.loads((Path(__file__).resolve().parents[3] / "statemachines" / "analysis.asl.json").read_text())
    segment = asl["States"]["ExtractAndAnalyze"]["ItemProcessor"]["States"]
    states = segment["AnalyzeChunks"]["ItemProcessor"]["States"]
    [catch] = [c for c in states[task]["Catch"] if "RateLimited" in c["ErrorEquals"]]
    assert not [r for r in states[task].get("Retry", []) if "RateLimited" in r["ErrorEquals"]]
    choices = {next(k for k in c if k.startswith("Numeric")): c for c in states[f"{task}CanComeBack"]["Choices"]
               if "Variable" in c}  # the bounds every error has (ProviderRetryable has a tighter count too)
    return {"catch": catch, "wait": states[f"{task}ComeBackLater"]["Parameters"]["wait_s.$"],
            "max_come_backs": choices["NumericGreaterThan"]["NumericGreaterThan"],
            "max_waited_s": choices["NumericGreaterThanEquals"]["NumericGreaterThanEquals"]}


@pytest.mark.parametrize("chunks", [40, 80, 150])
def test_given_many_chunks_at_once_at_the_template_defaults_when_step_functions_comes_back_after_retry_after_then_all_succeed_within_the_limit(
        ddb, atomic_requests, chunks):
    """Each caller is a chunk Lambda making its call. A call the bucket cannot serve within the
    Lambda's wait raises RateLimited("retry after N s"); the ASL's come-back loop waits
    N + MathRandom(0, N) seconds and runs the chunk again, up to its bounds.

    Measured with the fixed Retry this replaced (3 attempts at 5 s doubling, full jitter,
    retry_after_s ignored): 3 of 40, 14 of 80 and 41 of 150 chunks failed, and each failed its job."""
    regime = come_back_regime()
    assert regime["catch"]["Next"] == "AnalyzeChunkRetryAfter"
    assert "States.MathRandom(0, " in regime["wait"] and regime["wait"].startswith("States.MathAdd(")
    rpm, tpm = (int(TEMPLATE_DEFAULTS[name]) for name in ("RateLimitRpm", "RateLimitTpm"))
    max_wait_s = inspect.signature(DynamoAccounting).parameters["max_wait_s"].default
    time = SimulatedTime(T0, participants=chunks)
    rl = RateLimiter(TABLE, rpm=rpm, tpm=tpm, client=ddb, clock=time, sleep=time.sleep)
    admitted: list[float] = []
    attempts: dict[int, int] = {}
    failed: list[int] = []

    def chunk(n: int):
        jitter = random.Random(n)
        come_backs = waited = 0
        try:
            while True:
                attempts[n] = attempts.get(n, 0) + 1
                try:
                    rl.acquire("openai", tokens=800, max_wait_s=max_wait_s)
                    admitted.append(time.now())
                    return
                except RateLimited as exc:
                    come_backs += 1
                    if come_backs > regime["max_come_backs"] or waited >= regime["max_waited_s"]:
                        failed.append(n)
                        return
                    seconds = retry_after_whole_s(exc.retry_after_s)  # the handler's "retry after N s"
                    wait = seconds + jitter.randrange(0, seconds)  # States.MathRandom(0, N): N excluded
                    waited += wait
                    time.sleep(wait)
        finally:
            time.leave()

    threads = [threading.Thread(target=chunk, args=(n,)) for n in range(chunks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads)
    assert failed == []
    assert len(admitted) == chunks
    assert busiest_window(admitted) <= rpm
    runs = sorted(attempts.values())
    print(f"\n{chunks} chunks: {sum(runs)} AnalyzeChunk runs (Step Functions attempts), at most {runs[-1]} "
          f"for one chunk; the last admitted {max(admitted) - T0:.0f} s after the first")
    assert runs[-1] <= regime["max_come_backs"]
