from decimal import Decimal

import httpx
import pytest

from spend_testkit import T0, TABLE, gpt_call
from vidpipe.accounting import ChatCallMeter, ProviderCall, reservation_id_for
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded, RateLimited
from vidpipe.providers.chat import ChatClient
from vidpipe.providers.http import RetryPolicy
from vidpipe.spend.accounting import DynamoAccounting
from vidpipe.spend.budgets import ReservationState
from vidpipe.spend.prices import PriceConfigError
from vidpipe.spend.scopes import ScopeRef
from vidpipe_local.clock import VirtualClock

DAY = ScopeRef("global", "day:2026-11-22")
MONTH = ScopeRef("global", "month:2026-11")
NEXT_DAY = ScopeRef("global", "day:2026-11-23")
SETTINGS = Settings(table_name=TABLE, budget_daily_usd=Decimal("5"), reservation_ttl_s=900, poll_deadline_s=3600,
                    rate_limit_rpm=60, rate_limit_tpm=100_000)


@pytest.fixture
def clock():
    return VirtualClock(T0)


@pytest.fixture
def accounting(ddb, clock):
    return DynamoAccounting.from_settings(SETTINGS, client=ddb, clock=clock, sleep=clock.sleep)


def chunk_call(key, input_tokens=2_184, output_tokens=400, **extra):
    return ProviderCall(job_id="job-1", step="analyze", call_key=key, provider="gemini", model="gemini-2.5-flash",
                        input_tokens=input_tokens, output_tokens=output_tokens, images=8, **extra)


def scope(accounting, ref) -> tuple[Decimal, Decimal]:
    s = accounting.budgets.scope_state(ref)
    assert s["headroom"] == s["limit"] - s["spent"] - s["reserved"]
    return s["spent"], s["reserved"]


def ledger_sum(accounting, *jobs) -> Decimal:
    return sum((e.cost_usd for job in jobs for e in accounting.ledger.entries(job)), Decimal(0))


def test_given_an_analysis_when_calls_are_recorded_then_spent_moves_with_each_entry_and_settle_returns_the_rest(
        accounting):
    reservation_id = accounting.reserve("job-1", Decimal("0.05"), "gemini-2.5-flash", job_limit_usd=Decimal("1"))

    costs = [accounting.record_call(chunk_call(f"ccr-{n}")) for n in range(3)]
    assert accounting.record_call(chunk_call("ccr-0")) == costs[0]  # a retried write: priced, counted once
    assert scope(accounting, DAY) == (Decimal("0.004965"), Decimal("0.045035"))  # spent before any settle
    totals = accounting.settle("job-1", reservation_id)

    assert reservation_id == reservation_id_for("job-1")
    assert costs == [Decimal("0.001655")] * 3  # 2184 × $0.30 + 400 × $2.50 per MTok
    assert totals["calls"] == 3 and totals["cost_usd"] == Decimal("0.004965") and totals["input_tokens"] == 3 * 2_184
    for ref in (DAY, MONTH, ScopeRef("job:job-1", "total")):
        assert scope(accounting, ref) == (Decimal("0.004965"), 0)
    assert accounting.settle("job-1", reservation_id) == totals  # settling again changes nothing
    assert scope(accounting, DAY) == (Decimal("0.004965"), 0)


def test_given_an_unconfirmed_estimate_when_the_confirmed_usage_arrives_then_it_replaces_the_estimate_everywhere(
        accounting):
    accounting.reserve("job-1", Decimal("0.05"), "gemini-2.5-flash")

    estimate = accounting.record_call(chunk_call("ccr-1", output_tokens=4_000, confirmed=False))
    actual = accounting.record_call(chunk_call("ccr-1"))
    again = accounting.record_call(chunk_call("ccr-1", output_tokens=4_000, confirmed=False))  # a late sweep

    assert (estimate, actual, again) == (Decimal("0.010655"), Decimal("0.001655"), Decimal("0.001655"))
    [entry] = accounting.ledger.entries("job-1")
    assert entry.confirmed and entry.cost_usd == Decimal("0.001655") and entry.output_tokens == 400
    totals = accounting.ledger.job_totals("job-1")
    assert (totals.calls, totals.cost_usd, totals.output_tokens) == (1, Decimal("0.001655"), 400)
    assert accounting.ledger.aggregates("day")[0].cost_usd == Decimal("0.001655")
    assert scope(accounting, DAY)[0] == Decimal("0.001655") == ledger_sum(accounting, "job-1")


def test_given_attempts_announced_when_the_job_settles_then_unfinished_ones_become_unconfirmed_entries(
        accounting):
    reservation_id = accounting.reserve("job-1", Decimal("0.05"), "gemini-2.5-flash")
    for key in ("ccr-billed", "ccr-refused", "ccr-died"):
        accounting.begin_call(chunk_call(key, output_tokens=4_000, confirmed=False))
    accounting.record_call(chunk_call("ccr-billed"))
    accounting.abandon_call("job-1", "ccr-refused")  # an HTTP 503: the provider generated nothing

    totals = accounting.settle("job-1", reservation_id)

    entries = {e.call_key: (e.confirmed, e.cost_usd) for e in accounting.ledger.entries("job-1")}
    assert entries == {"ccr-billed": (True, Decimal("0.001655")), "ccr-died": (False, Decimal("0.010655"))}
    assert accounting.ledger.intents("job-1") == []
    assert totals["cost_usd"] == Decimal("0.01231")
    assert scope(accounting, DAY) == (Decimal("0.01231"), 0)


def test_given_a_settled_job_when_a_late_call_is_recorded_then_spent_still_equals_the_ledger(accounting):
    reservation_id = accounting.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    accounting.record_call(gpt_call("job-1", "ccr-1", "0.25"))
    accounting.settle("job-1", reservation_id)

    accounting.record_call(gpt_call("job-1", "ccr-late", "0.50"))  # a chunk Lambda still running at finalize

    assert scope(accounting, DAY) == (Decimal("0.75"), 0) == (ledger_sum(accounting, "job-1"), 0)
    reservation = accounting.budgets.get(reservation_id)
    assert reservation.state is ReservationState.SETTLED and reservation.consumed == Decimal("0.25")


def test_given_no_reservation_when_a_call_is_recorded_then_it_still_counts_against_the_day_and_month(accounting):
    accounting.record_call(gpt_call("job-9", "ccr-1", "0.40"))

    assert scope(accounting, DAY) == (Decimal("0.40"), 0)
    assert scope(accounting, MONTH) == (Decimal("0.40"), 0)
    with pytest.raises(BudgetExceeded, match="0.40 spent"):
        accounting.reserve("job-10", Decimal("4.70"), "gpt-4.1")  # 5.00 a day


def test_given_a_reservation_made_yesterday_when_its_calls_land_today_then_they_count_where_it_was_held(
        accounting, clock):
    reservation_id = accounting.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    clock.advance(24 * 3600)

    accounting.record_call(gpt_call("job-1", "ccr-1", "0.30"))
    accounting.settle("job-1", reservation_id)
    accounting.record_call(gpt_call("job-1", "ccr-late", "0.20"))

    assert scope(accounting, DAY) == (Decimal("0.30"), 0)  # consumed what was reserved there
    assert scope(accounting, NEXT_DAY) == (Decimal("0.20"), 0)  # after settling: today's budget
    assert scope(accounting, MONTH) == (Decimal("0.50"), 0)


def test_given_a_holder_that_died_after_spending_when_swept_then_only_the_unspent_rest_goes_back(
        accounting, clock):
    accounting.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    accounting.record_call(gpt_call("job-1", "ccr-1", "0.70"))
    accounting.begin_call(gpt_call("job-1", "ccr-2", "0.20", confirmed=False))  # then the Lambda died
    clock.advance(901)

    assert accounting.sweep(intents_older_than_s=900) == {"intents": 1, "reservations": 1}
    assert accounting.sweep(intents_older_than_s=900) == {"intents": 0, "reservations": 0}

    assert scope(accounting, DAY) == (Decimal("0.90"), 0) == (ledger_sum(accounting, "job-1"), 0)
    assert accounting.budgets.get(reservation_id_for("job-1")).state is ReservationState.RELEASED


def test_given_a_recent_intent_when_the_sweep_runs_then_it_is_left_to_its_call(accounting, clock):
    accounting.begin_call(gpt_call("job-1", "ccr-1", "0.20", confirmed=False))
    clock.advance(899)

    assert accounting.sweep_intents(older_than_s=900) == 0
    accounting.record_call(gpt_call("job-1", "ccr-1", "0.10"))
    clock.advance(10)

    assert accounting.sweep_intents(older_than_s=900) == 0
    [entry] = accounting.ledger.entries("job-1")
    assert entry.confirmed and entry.cost_usd == Decimal("0.10")


def test_given_a_generated_clip_when_recorded_then_it_is_priced_per_second_at_the_dearest_rate(accounting):
    cost = accounting.record_call(ProviderCall(job_id="job-2", step="generate", call_key="vid-1", provider="generic",
                                               model="vidgen-1", clip_seconds=4.0))

    assert cost == Decimal("0.8")  # 4 s at the 1080p60 rate: the call did not say its resolution
    assert accounting.ledger.job_totals("job-2").clip_seconds == Decimal(4)


def test_given_a_clip_with_its_resolution_and_fps_when_recorded_then_it_is_priced_at_that_rate(accounting):
    cost = accounting.record_call(ProviderCall(job_id="job-4", step="generate", call_key="vid-2", provider="generic",
                                               model="vidgen-1", clip_seconds=4.0, resolution="1280x720", fps=24))

    assert cost == Decimal("0.2")  # the default 720p rate, as reserved, not the dearest


def test_given_a_video_reservation_when_made_then_it_outlives_the_polling_deadline(accounting):
    video = accounting.budgets.get(accounting.reserve("job-2", Decimal("0.5"), "vidgen-1"))
    chat = accounting.budgets.get(accounting.reserve("job-3", Decimal("0.5"), "gemini-2.5-flash"))

    assert video.expires_at - video.created_at == 900 + 3600
    assert chat.expires_at - chat.created_at == 900


def test_given_a_failed_job_when_its_reservation_is_released_then_it_is_returned_once(accounting):
    reservation_id = accounting.reserve("job-1", Decimal("2"), "gemini-2.5-flash")

    accounting.release(reservation_id)
    accounting.release(reservation_id)
    accounting.release(None)
    accounting.release("never-made")

    assert accounting.budgets.scope_state(DAY)["reserved"] == 0


def test_given_a_holder_that_died_when_the_expiry_sweep_runs_then_its_reservation_is_released(accounting, clock):
    accounting.reserve("job-1", Decimal("2"), "gemini-2.5-flash")
    clock.advance(901)

    assert (accounting.sweep_expired(), accounting.sweep_expired()) == (1, 0)
    assert accounting.budgets.scope_state(DAY)["reserved"] == 0


def test_given_an_estimate_over_the_day_when_reserved_then_budget_exceeded_names_the_day(accounting):
    with pytest.raises(BudgetExceeded, match="budget day:2026-11-22 global"):
        accounting.reserve("job-1", Decimal("6"), "gemini-2.5-flash")


def test_given_a_call_whose_images_vanished_when_recorded_then_it_is_flagged(accounting, caplog):
    accounting.record_call(chunk_call("chunk-0", input_tokens=120, expected_prompt_tokens=2_184))

    assert [r.verdict for r in caplog.records if r.levelname == "WARNING"] == ["images_dropped"]


def test_given_a_model_without_a_price_when_a_call_is_recorded_then_it_fails_loudly(accounting):
    with pytest.raises(PriceConfigError, match="gpt-9"):
        accounting.record_call(ProviderCall("job-1", "analyze", "c", "openai", "gpt-9", 10, 10))
    with pytest.raises(PriceConfigError, match="gpt-9"):  # refused before the attempt, not when swept
        accounting.begin_call(ProviderCall("job-1", "analyze", "d", "openai", "gpt-9", 10, 10, confirmed=False))
    assert accounting.ledger.total().calls == 0 and accounting.ledger.intents("job-1") == []


def test_given_the_shared_bucket_when_a_burst_is_spent_then_acquire_waits_and_finally_hands_back(accounting, clock):
    for _ in range(6):
        accounting.acquire("gemini", 1_000)
    accounting.acquire("gemini", 1_000)
    assert clock.now() == pytest.approx(T0 + 1.091)

    accounting.max_wait_s = 0
    with pytest.raises(RateLimited):
        accounting.acquire("gemini", 1_000)


def test_given_a_read_timeout_then_an_answer_when_a_metered_chat_call_is_made_then_both_attempts_are_in_spent(
        accounting):
    answers = [httpx.ReadTimeout("no answer in time"),
               httpx.Response(200, json={"id": "resp-1", "choices": [{"message": {"content": "ok"}}],
                                         "usage": {"prompt_tokens": 2_184, "completion_tokens": 400}})]
    sent = []

    def gateway(request):
        sent.append(request.headers["x-client-request-id"])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    chat = ChatClient("https://gateway.test/v1", "", http_client=httpx.Client(transport=httpx.MockTransport(gateway)),
                      policy=RetryPolicy(max_attempts=2), sleep=lambda _s: None)
    reservation_id = accounting.reserve("job-1", Decimal("0.05"), "gemini-2.5-flash")
    meter = ChatCallMeter(accounting, "job-1", "analyze", "gemini", "gemini-2.5-flash", input_tokens=2_500,
                          max_tokens=800, images=8)

    chat.complete("gemini-2.5-flash", [{"role": "user", "content": "hi"}], meter=meter)
    accounting.settle("job-1", reservation_id)

    entries = {e.call_key: (e.confirmed, e.input_tokens, e.output_tokens) for e in accounting.ledger.entries("job-1")}
    assert entries == {sent[0]: (False, 2_500, 800), sent[1]: (True, 2_184, 400)}
    assert accounting.ledger.intents("job-1") == []
    assert scope(accounting, DAY) == (ledger_sum(accounting, "job-1"), 0)
