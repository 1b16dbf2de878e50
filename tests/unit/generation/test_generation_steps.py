"""Reserve, submit and status-check steps with a scripted provider and a fake clock."""

from decimal import Decimal

import pytest
from generation_fakes import Clock, FakeAccounting, MemoryWatches, ScriptedProvider, generate_job

from vidpipe.accounting import reservation_id_for
from vidpipe.errors import BudgetExceeded, ProviderError, ProviderRetryable
from vidpipe.generation.check import GenerationTimedOut, check_generation
from vidpipe.generation.enhance import Enhancement, enhancement_tokens
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


def submit(provider, clock, job=None, deadline_s=3600.0, accounting=None, watches=None):
    return submit_generation("job-1", job or generate_job(mode="slow_motion"), ENHANCED, provider,
                             accounting if accounting is not None else FakeAccounting(),
                             watches if watches is not None else MemoryWatches(), policy=POLICY,
                             deadline_s=deadline_s, output_s3_uri="s3://media/outputs/job-1/provider", now=clock)


def check(poll, provider, accounting, clock, job=None, max_attempts=60, watches=None):
    return check_generation("job-1", job or generate_job(mode="slow_motion"), poll, provider, accounting,
                            watches if watches is not None else MemoryWatches(), policy=POLICY,
                            max_attempts=max_attempts, now=clock)


def chat_cost(model, input_tokens, output_tokens):
    return Decimal("0.000001") * input_tokens + Decimal("0.000004") * output_tokens


# ------------------------------------------------------------------ reserve

def test_given_a_job_when_reserving_then_the_billed_seconds_are_priced_and_reserved_under_its_cap(accounting):
    cost = per_second("0.10")
    job = generate_job(provider="openai", model="sora-2", duration_s=4.2, resolution="1280x720", fps=24,
                       max_cost_usd=1)

    reservation = reserve_generation("job-1", job, accounting, cost, chat_cost, "gemini-2.5-flash")

    assert cost.seen == [("sora-2", 5.0, "1280x720", 24)]  # OpenAI bills whole seconds
    assert reservation.estimate_usd == Decimal("0.50") and reservation.reservation_id == reservation_id_for("job-1")
    assert accounting.reservations == [("job-1", Decimal("0.50"), "sora-2", Decimal("1.0000"))]


def test_given_an_enhanced_job_when_reserving_then_one_reservation_holds_the_enhancement_and_the_clip(accounting):
    job = generate_job(duration_s=2, enhance_prompt=True, max_cost_usd=1)
    input_tokens, output_tokens = enhancement_tokens(job)

    reservation = reserve_generation("job-1", job, accounting, per_second("0.05"), chat_cost, "gemini-2.5-flash")

    enhancement = chat_cost("gemini-2.5-flash", input_tokens, output_tokens)
    assert input_tokens > 100 and output_tokens == 1000  # the instructions and a full answer
    assert reservation.enhancement_usd == enhancement > 0
    assert [amount for _, amount, _, _ in accounting.reservations] == [Decimal("0.10") + enhancement]


def test_given_an_enhanced_job_that_only_fits_without_the_enhancement_when_reserving_then_it_is_refused():
    job = generate_job(duration_s=2, enhance_prompt=True)
    accounting = FakeAccounting(budget_usd=Decimal("0.1001"))  # the clip alone ($0.10) would fit

    with pytest.raises(BudgetExceeded):
        reserve_generation("job-1", job, accounting, per_second("0.05"), chat_cost, "gemini-2.5-flash")
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


# ------------------------------------------------------------------ paid for, whatever happens on our side

def test_given_a_submission_when_the_provider_names_its_job_then_it_is_watched_and_the_intent_dropped():
    provider, clock, accounting, watches = ScriptedProvider([]), Clock(), FakeAccounting(), MemoryWatches()

    submit(provider, clock, accounting=accounting, watches=watches)

    [watch] = watches.pending()
    assert (watch.provider_job_id, watch.seconds, watch.resolution, watch.fps) == ("pj-1", 6.0, "1280x720", 24)
    assert watch.idempotency_key == idempotency_key("job-1")
    assert accounting.intents == {}


def test_given_a_submit_answer_that_was_lost_when_it_fails_then_the_intent_stays_for_an_unconfirmed_entry():
    lost = ProviderRetryable("generic: POST /v1/video/generate answered HTTP 200 without a JSON object",
                             answer_lost=True)
    provider, accounting, watches = ScriptedProvider([], submit_errors=[lost]), FakeAccounting(), MemoryWatches()

    with pytest.raises(ProviderRetryable, match="may have created the job.*unconfirmed spend of 6 s"):
        submit(provider, Clock(), accounting=accounting, watches=watches)

    [intent] = accounting.intents.values()
    assert (intent.call_key, intent.clip_seconds, intent.confirmed) == (idempotency_key("job-1"), 6.0, False)
    assert watches.pending() == []


def test_given_a_plain_refusal_after_a_lost_answer_when_submitting_then_the_intent_is_kept():
    lost = ProviderRetryable("ReadTimeout calling video.test", answer_lost=True)
    refused = ProviderRetryable("HTTP 503 from video.test/v1/video/generate")
    provider = ScriptedProvider([], submit_errors=[lost, refused])
    accounting, watches = FakeAccounting(), MemoryWatches()

    for _ in range(2):
        with pytest.raises(ProviderRetryable):
            submit(provider, Clock(), accounting=accounting, watches=watches)

    assert list(accounting.intents) == [("job-1", idempotency_key("job-1"))]


def test_given_a_plain_refusal_when_submitting_then_nothing_is_left_to_charge():
    refused = ProviderError("HTTP 400 from video.test/v1/video/generate: bad resolution")
    provider, accounting = ScriptedProvider([], submit_errors=[refused]), FakeAccounting()

    with pytest.raises(ProviderError, match="^HTTP 400"):
        submit(provider, Clock(), accounting=accounting)

    assert accounting.intents == {}


def test_given_a_completed_clip_when_checked_then_the_watch_ends_once_it_is_recorded(accounting):
    provider, clock, watches = ScriptedProvider([Status("completed", download_url="https://cdn.test/v.mp4")]), \
        Clock(), MemoryWatches()
    poll = submit(provider, clock, watches=watches)

    check(poll, provider, accounting, clock, watches=watches)

    assert watches.pending() == [] and [c.call_key for c in accounting.calls] == ["pj-1"]


@pytest.mark.parametrize("error", [
    ProviderError("HTTP 401 from video.test/v1/video/generations/pj-1: invalid key", status=401),
    ProviderError("HTTP 404 from video.test/v1/video/generations/pj-1: not found", status=404),
    ProviderRetryable("generic: GET /v1/video/generations/pj-1 answered HTTP 200 without a JSON object"),
])
def test_given_a_status_check_that_errs_once_when_checking_then_it_counts_and_the_next_check_finds_the_clip(
        accounting, error):
    provider = ScriptedProvider([error, Status("completed", download_url="https://cdn.test/v.mp4")])
    clock = Clock()
    poll = submit(provider, clock)

    first = check(poll, provider, accounting, clock)
    done = check(first, provider, accounting, clock)

    assert (first.state, first.status_errors, first.last_error) == ("queued", 1, error.reason)
    assert (done.state, done.status_errors, len(accounting.calls)) == ("completed", 1, 1)


def test_given_status_that_never_answers_when_the_cap_is_reached_and_the_cancel_says_completed_then_the_clip_is_recorded_and_stored(
        accounting):
    finished = Status("completed", download_url="https://cdn.test/v.mp4")
    provider = ScriptedProvider([ProviderRetryable("HTTP 500 from video.test")], cancel_answer=finished)
    clock, watches = Clock(), MemoryWatches()
    poll = submit(provider, clock, watches=watches).model_copy(update={"attempt": 2, "status_errors": 2})

    done = check(poll, provider, accounting, clock, max_attempts=3, watches=watches)

    assert (done.state, done.download_url, done.status_errors) == ("completed", "https://cdn.test/v.mp4", 3)
    assert [(c.call_key, c.clip_seconds, c.confirmed) for c in accounting.calls] == [("pj-1", 6.0, True)]
    assert watches.pending() == []


def test_given_a_cancel_that_stopped_the_job_when_timing_out_then_nothing_is_recorded_or_watched(accounting):
    provider, clock, watches = ScriptedProvider([Status("processing")]), Clock(), MemoryWatches()
    poll = submit(provider, clock, watches=watches, deadline_s=60)
    clock.t += 61

    with pytest.raises(GenerationTimedOut, match="cancelled at the provider$"):
        check(poll, provider, accounting, clock, watches=watches)
    assert accounting.calls == [] and watches.pending() == []


@pytest.mark.parametrize("can_cancel, still", [(False, "generic offers no cancel"),
                                               (True, "cancel requested, the provider job is still processing")])
def test_given_a_job_that_cannot_be_stopped_when_timing_out_then_the_reason_says_it_is_watched(
        accounting, can_cancel, still):
    provider = ScriptedProvider([Status("processing")], can_cancel=can_cancel, cancel_answer=Status("processing"))
    clock, watches = Clock(), MemoryWatches()
    poll = submit(provider, clock, watches=watches, deadline_s=60)
    clock.t += 61

    with pytest.raises(GenerationTimedOut) as timed_out:
        check(poll, provider, accounting, clock, watches=watches)

    assert still in timed_out.value.reason and "watched until it ends" in timed_out.value.reason
    assert [w.provider_job_id for w in watches.pending()] == ["pj-1"] and accounting.calls == []


def test_given_the_provider_failed_the_job_when_checking_then_the_watch_ends(accounting):
    provider, clock, watches = ScriptedProvider([Status("failed", error="policy")]), Clock(), MemoryWatches()
    poll = submit(provider, clock, watches=watches)
    with pytest.raises(ProviderError):
        check(poll, provider, accounting, clock, watches=watches)
    assert watches.pending() == []
