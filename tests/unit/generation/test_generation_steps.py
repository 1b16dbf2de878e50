"""Reserve, submit and status-check steps with a scripted provider and a fake clock."""

from decimal import Decimal

import pytest
from generation_fakes import Clock, ScriptedProvider, generate_job

from vidpipe.errors import BudgetExceeded, ProviderError, ProviderRetryable
from vidpipe.generation.check import GenerationTimedOut, check_generation
from vidpipe.generation.enhance import Enhancement
from vidpipe.generation.physics import Physics
from vidpipe.generation.polling import PollPolicy
from vidpipe.generation.reserve import reserve_generation
from vidpipe.generation.submit import idempotency_key, submit_generation
from vidpipe.providers.video import Status

POLICY = PollPolicy(min_wait_s=5, max_wait_s=300)
ENHANCED = Enhancement(prompt="a marble falls, slowly", physics=Physics(time_scale=0.2), enhanced=True)


def per_second(rate: str):
    seen = []

    def cost(model, seconds, resolution, fps):
        seen.append((model, seconds, resolution, fps))
        return Decimal(rate) * Decimal(str(seconds))

    cost.seen = seen
    return cost


def submit(provider, clock, job=None, deadline_s=3600.0):
    return submit_generation("job-1", job or generate_job(mode="slow_motion"), ENHANCED, provider, policy=POLICY,
                             deadline_s=deadline_s, output_s3_uri="s3://media/outputs/job-1/provider", now=clock)


def check(poll, provider, accounting, clock, job=None, max_attempts=60):
    return check_generation("job-1", job or generate_job(mode="slow_motion"), poll, provider, accounting,
                            policy=POLICY, max_attempts=max_attempts, now=clock)


# ------------------------------------------------------------------ reserve

def test_given_a_job_when_reserving_then_the_billed_seconds_are_priced_and_reserved_under_its_cap(accounting):
    cost = per_second("0.10")
    job = generate_job(provider="openai", model="sora-2", duration_s=4.2, resolution="1280x720", fps=24,
                       max_cost_usd=1)

    reservation = reserve_generation("job-1", job, accounting, cost)

    assert cost.seen == [("sora-2", 5.0, "1280x720", 24)]  # OpenAI bills whole seconds
    assert reservation.estimate_usd == Decimal("0.50") and reservation.reservation_id == "res-1"
    assert accounting.reservations == [("job-1", Decimal("0.50"), "sora-2", Decimal("1.0000"))]


def test_given_an_estimate_over_max_cost_when_reserving_then_budget_exceeded_and_nothing_reserved(accounting):
    job = generate_job(duration_s=10, max_cost_usd="0.25")
    with pytest.raises(BudgetExceeded, match="exceeds the job limit"):
        reserve_generation("job-1", job, accounting, per_second("0.05"))
    assert accounting.reservations == []


# ------------------------------------------------------------------ submit

def test_given_an_enhanced_prompt_when_submitting_then_the_provider_gets_it_with_a_stable_key():
    provider, clock = ScriptedProvider([], eta_s=30), Clock()

    poll = submit(provider, clock)

    [(request, key)] = provider.submitted
    assert (request.prompt, request.physics, request.mode) == ("a marble falls, slowly", {"time_scale": 0.2},
                                                               "slow_motion")
    assert request.output_s3_uri == "s3://media/outputs/job-1/provider"
    assert key == idempotency_key("job-1") == idempotency_key("job-1") != idempotency_key("job-2")
    assert (poll.provider_job_id, poll.attempt, poll.state) == ("pj-1", 0, "queued")
    assert poll.deadline_at == clock.t + 3600
    assert poll.wait_seconds == 32  # just past the 30 s ETA


# ------------------------------------------------------------------ check

def test_given_a_completed_job_when_checking_then_the_clip_is_recorded_in_the_ledger_once(accounting):
    provider, clock = ScriptedProvider([Status("completed", download_url="https://cdn.test/v.mp4")]), Clock()
    poll = submit(provider, clock)
    clock.t += 32

    done = check(poll, provider, accounting, clock)

    assert (done.state, done.attempt, done.download_url) == ("completed", 1, "https://cdn.test/v.mp4")
    assert done.completed_at == clock.t
    [call] = accounting.calls
    assert (call.step, call.call_key, call.provider, call.clip_seconds) == ("generate", "pj-1", "generic", 6.0)


def test_given_a_running_job_when_checking_then_the_next_wait_follows_its_progress(accounting):
    provider, clock = ScriptedProvider([Status("processing", progress=0.5)]), Clock()
    poll = submit(provider, clock)
    clock.t += 32

    later = check(poll, provider, accounting, clock)

    assert (later.state, later.attempt, later.progress) == ("processing", 1, 0.5)
    assert later.wait_seconds == 34  # 32 s more at the same rate, plus 5%
    assert accounting.calls == []


def test_given_the_provider_failed_the_job_when_checking_then_its_reason_fails_the_generation(accounting):
    provider, clock = ScriptedProvider([Status("failed", error="content policy violation")]), Clock()
    with pytest.raises(ProviderError, match="the provider failed the job: content policy violation"):
        check(submit(provider, clock), provider, accounting, clock)


def test_given_a_429_storm_on_status_when_checking_then_it_is_counted_and_waited_out_not_fatal(accounting):
    storm = ProviderRetryable("HTTP 429 from video.test", retry_after_s=90)
    provider, clock = ScriptedProvider([storm]), Clock()
    poll = submit(provider, clock)
    clock.t += 32

    later = check(poll, provider, accounting, clock)

    assert (later.attempt, later.status_errors, later.state) == (1, 1, "queued")
    assert later.wait_seconds == 90 and "429" in later.last_error


def test_given_the_deadline_passed_when_checking_then_it_cancels_and_times_out(accounting):
    provider, clock = ScriptedProvider([Status("processing", progress=0.95)]), Clock()
    poll = submit(provider, clock, deadline_s=600)
    clock.t += 601

    with pytest.raises(GenerationTimedOut, match=r"^timed out: no video after 1 status checks in 601 s; "
                                                 "cancelled at the provider$"):
        check(poll, provider, accounting, clock)
    assert provider.cancelled == ["pj-1"]


def test_given_the_attempt_cap_when_checking_a_provider_without_cancel_then_it_times_out_saying_so(accounting):
    provider, clock = ScriptedProvider([Status("queued")], can_cancel=False), Clock()
    poll = submit(provider, clock).model_copy(update={"attempt": 2})

    with pytest.raises(GenerationTimedOut, match="generic offers no cancel"):
        check(poll, provider, accounting, clock, max_attempts=3)


def test_given_a_cancel_that_fails_when_timing_out_then_the_timeout_is_still_reported(accounting):
    class Stubborn(ScriptedProvider):
        def cancel(self, provider_job_id):
            raise ProviderError("HTTP 409: already finishing")

    provider, clock = Stubborn([Status("processing")]), Clock()
    poll = submit(provider, clock, deadline_s=60)
    clock.t += 61
    with pytest.raises(GenerationTimedOut, match="cancel failed: HTTP 409"):
        check(poll, provider, accounting, clock)


def test_given_a_job_that_finishes_at_the_deadline_when_checking_then_the_clip_wins_over_the_timeout(accounting):
    provider, clock = ScriptedProvider([Status("completed", download_url="https://cdn.test/v.mp4")]), Clock()
    poll = submit(provider, clock, deadline_s=60)
    clock.t += 61
    assert check(poll, provider, accounting, clock).state == "completed"
    assert provider.cancelled == []
