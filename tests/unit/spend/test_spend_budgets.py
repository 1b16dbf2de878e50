from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE, ConflictOnce, accounting_with, gpt_call
from vidpipe.accounting import reservation_id_for
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded
from vidpipe.spend.budgets import Budgets, ReservationState
from vidpipe.spend.scopes import BudgetConfig, ScopeRef
from vidpipe_local.clock import VirtualClock

DAY = ScopeRef("global", "day:2026-11-22")
MONTH = ScopeRef("global", "month:2026-11")
CONFIG = BudgetConfig(daily_usd=Decimal("10"), monthly_usd=Decimal("100"),
                      model_daily_usd={"sora-2": Decimal("2")}, reservation_ttl_s=900)


@pytest.fixture
def clock():
    return VirtualClock(T0)


@pytest.fixture
def budgets(ddb, clock):
    return Budgets(TABLE, CONFIG, client=ddb, clock=clock)


def state(budgets, ref) -> tuple[Decimal, Decimal, Decimal]:
    s = budgets.scope_state(ref)
    assert s["headroom"] == s["limit"] - s["spent"] - s["reserved"]  # the invariant conditions rely on
    return s["spent"], s["reserved"], s["limit"]


def test_given_room_when_reserving_then_every_scope_holds_the_amount(budgets):
    reservation = budgets.reserve("job-1", Decimal("1.25"), "sora-2", job_limit=Decimal("3"))

    assert reservation.state is ReservationState.LIVE
    assert reservation.expires_at == Decimal(str(T0 + 900))
    assert reservation.scopes == [DAY, MONTH, ScopeRef("model:sora-2", "day:2026-11-22"),
                                  ScopeRef("job:job-1", "total")]
    for ref, limit in zip(reservation.scopes, ["10", "100", "2", "3"], strict=True):
        assert state(budgets, ref) == (0, Decimal("1.25"), Decimal(limit))


def test_given_a_nearly_spent_day_when_reserving_then_the_refusal_names_the_scope_and_the_numbers(ddb, clock):
    accounting = accounting_with(ddb, CONFIG, clock)
    budgets = accounting.budgets
    first = budgets.reserve("job-1", Decimal("9.50"), "gpt-4.1")
    budgets.reserve("job-2", Decimal("0.30"), "gpt-4.1")
    accounting.record_call(gpt_call("job-1", "c1", "9.80"))  # the call cost more than estimated
    accounting.settle("job-1", first.reservation_id)

    with pytest.raises(BudgetExceeded) as refused:
        budgets.reserve("job-3", Decimal("0.50"), "gpt-4.1")

    assert refused.value.reason == (
        "budget day:2026-11-22 global: 9.80 spent + 0.30 reserved + 0.50 requested > 10.00 limit")
    assert refused.value.details["scopes"] == ["day:2026-11-22 global"]


def test_given_a_refusal_in_one_scope_when_reserving_then_no_scope_is_touched(budgets):
    budgets.reserve("job-1", Decimal("1.50"), "sora-2")

    with pytest.raises(BudgetExceeded, match=r"budget day:2026-11-22 model:sora-2: 0.00 spent \+ 1.50 reserved"):
        budgets.reserve("job-2", Decimal("0.75"), "sora-2", reservation_id="r2")

    assert state(budgets, DAY)[:2] == (0, Decimal("1.5"))
    assert state(budgets, MONTH)[:2] == (0, Decimal("1.5"))
    assert budgets.get("r2") is None


def test_given_a_job_limit_when_the_job_asks_for_more_then_the_job_scope_refuses(budgets):
    budgets.reserve("job-1", Decimal("0.40"), "gpt-4.1", job_limit=Decimal("0.50"), reservation_id="r1")

    with pytest.raises(BudgetExceeded) as refused:
        budgets.reserve("job-1", Decimal("0.20"), "gpt-4.1", job_limit=Decimal("0.50"), reservation_id="r2")

    assert refused.value.reason == "budget total job:job-1: 0.00 spent + 0.40 reserved + 0.20 requested > 0.50 limit"


def test_given_an_amount_above_a_whole_limit_when_reserving_then_it_is_refused_with_the_numbers(budgets):
    with pytest.raises(BudgetExceeded) as refused:
        budgets.reserve("job-1", Decimal("12"), "gpt-4.1")

    assert refused.value.reason == (
        "budget day:2026-11-22 global: 0.00 spent + 0.00 reserved + 12.00 requested > 10.00 limit")
    assert state(budgets, DAY) == (0, 0, 0)  # nothing created


def test_given_a_retried_reserve_when_the_id_exists_then_the_first_reservation_is_returned_once(budgets):
    first = budgets.reserve("job-1", Decimal("2"), "gpt-4.1")
    again = budgets.reserve("job-1", Decimal("2"), "sora-2")

    assert again == first and first.reservation_id == reservation_id_for("job-1")  # one per job
    assert state(budgets, DAY)[1] == Decimal("2")


def test_given_a_live_reservation_when_settled_twice_then_it_is_handed_back_once(budgets, ddb):
    reservation = budgets.reserve("job-1", Decimal("2.00"), "gpt-4.1")

    assert budgets.settle(reservation.reservation_id, Decimal("0")) is True
    assert budgets.settle(reservation.reservation_id) is False
    assert budgets.release(reservation.reservation_id) is False

    assert state(budgets, DAY) == (0, 0, Decimal("10"))
    assert budgets.get(reservation.reservation_id).state is ReservationState.SETTLED
    item = ddb.get_item(TableName=TABLE, Key=reservation.key)["Item"]
    assert int(item["ttl"]["N"]) == int(T0) + 30 * 24 * 3600  # the table's TTL removes it later


def test_given_a_live_reservation_when_released_twice_then_it_is_returned_once(budgets):
    reservation = budgets.reserve("job-1", Decimal("2.00"), "gpt-4.1")

    assert budgets.release(reservation.reservation_id) is True
    assert budgets.release(reservation.reservation_id) is False
    assert budgets.settle(reservation.reservation_id) is False

    assert state(budgets, DAY) == (0, 0, Decimal("10"))


def test_given_an_unknown_reservation_when_settled_or_released_then_nothing_moves(budgets):
    assert budgets.settle("nope") is False and budgets.release("nope") is False
    assert state(budgets, DAY) == (0, 0, 0)


def test_given_two_days_when_reserving_then_days_are_separate_and_the_month_is_shared(budgets, clock):
    budgets.reserve("job-1", Decimal("8"), "gpt-4.1")
    clock.advance(24 * 3600)

    budgets.reserve("job-2", Decimal("8"), "gpt-4.1")

    assert state(budgets, ScopeRef("global", "day:2026-11-23"))[1] == Decimal("8")
    assert state(budgets, MONTH)[1] == Decimal("16")


def test_given_a_transaction_conflict_when_reserving_then_it_is_retried(ddb):
    client = ConflictOnce(ddb)
    backoffs = []
    budgets = Budgets(TABLE, CONFIG, client=client, clock=VirtualClock(T0), sleep=backoffs.append)

    budgets.reserve("job-1", Decimal("1"), "gpt-4.1")

    assert client.conflicts == 1 and len(backoffs) == 1
    assert state(budgets, DAY)[1] == Decimal("1")


def test_given_settings_when_budgets_are_built_then_limits_come_from_settings_and_the_price_table(ddb):
    settings = Settings(budget_daily_usd=Decimal("3"), budget_monthly_usd=Decimal("30"), reservation_ttl_s=60,
                        price_table_json='{"video": {"vidgen-1": {"default_per_second": "0.05", '
                                         '"daily_budget_usd": "1"}}}')
    budgets = Budgets(TABLE, settings, client=ddb, clock=VirtualClock(T0))

    reservation = budgets.reserve("job-1", Decimal("0.5"), "vidgen-1")

    assert reservation.expires_at == Decimal(str(T0 + 60))
    assert state(budgets, ScopeRef("model:vidgen-1", "day:2026-11-22"))[2] == Decimal("1")
    assert state(budgets, DAY)[2] == Decimal("3")
