from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE
from vidpipe.accounting import ProviderCall
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded, RateLimited
from vidpipe.spend.accounting import DynamoAccounting
from vidpipe.spend.prices import PriceConfigError
from vidpipe.spend.scopes import ScopeRef
from vidpipe_local.clock import VirtualClock

DAY = ScopeRef("global", "day:2026-11-22")
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


def test_given_an_analysis_when_calls_are_recorded_and_settled_then_budget_spent_equals_the_ledger(accounting):
    reservation_id = accounting.reserve("job-1", Decimal("0.05"), "gemini-2.5-flash", job_limit_usd=Decimal("1"))

    costs = [accounting.record_call(chunk_call(f"chunk-{n}")) for n in range(3)]
    assert accounting.record_call(chunk_call("chunk-0")) == costs[0]  # a retried write: priced, counted once
    totals = accounting.settle("job-1", reservation_id)

    assert costs == [Decimal("0.001655")] * 3  # 2184 × $0.30 + 400 × $2.50 per MTok
    assert totals["calls"] == 3 and totals["cost_usd"] == Decimal("0.004965") and totals["input_tokens"] == 3 * 2_184
    day = accounting.budgets.scope_state(DAY)
    assert (day["spent"], day["reserved"]) == (Decimal("0.004965"), 0)
    assert accounting.settle("job-1", reservation_id) == totals  # settling again changes nothing
    assert accounting.budgets.scope_state(DAY)["spent"] == Decimal("0.004965")


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


def test_given_a_holder_that_died_when_the_scheduled_sweep_runs_then_its_reservation_is_released(accounting, clock):
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
    assert accounting.ledger.total().calls == 0


def test_given_the_shared_bucket_when_a_burst_is_spent_then_acquire_waits_and_finally_hands_back(accounting, clock):
    for _ in range(6):
        accounting.acquire("gemini", 1_000)
    accounting.acquire("gemini", 1_000)
    assert clock.now() == pytest.approx(T0 + 1.091)

    accounting.max_wait_s = 0
    with pytest.raises(RateLimited):
        accounting.acquire("gemini", 1_000)
