"""A production's reservation and its shots: each shot moves its amount out of
the production's reservation in one transaction (spend/budgets.py
``reserve_from``), takes no fresh budget, and what nobody took goes back once."""

from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE
from vidpipe.errors import BudgetExceeded
from vidpipe.spend.budgets import Budgets, ReservationState
from vidpipe.spend.scopes import BudgetConfig, ScopeRef
from vidpipe_local.clock import VirtualClock

DAY = ScopeRef("global", "day:2026-11-22")
CONFIG = BudgetConfig(daily_usd=Decimal("10"), monthly_usd=Decimal("100"), reservation_ttl_s=900)


@pytest.fixture
def budgets(ddb):
    return Budgets(TABLE, CONFIG, client=ddb, clock=VirtualClock(T0))


def reserved(budgets) -> Decimal:
    return budgets.scope_state(DAY)["reserved"]


def test_given_a_production_reservation_when_a_shot_reserves_from_it_then_the_amount_moves_and_no_budget_is_taken(
        budgets):
    budgets.reserve("pro-1", Decimal("3"), "vidgen-1", reservation_id="rsv-shots")

    shot = budgets.reserve_from("rsv-shots", "shot-1", Decimal("1.25"), "vidgen-1")

    assert shot.state is ReservationState.LIVE and shot.amount == Decimal("1.25")
    assert shot.scopes == budgets.get("rsv-shots").scopes
    assert budgets.get("rsv-shots").consumed == Decimal("1.25")
    assert reserved(budgets) == Decimal("3")  # moved, not taken twice


def test_given_a_retried_shot_reservation_when_repeated_then_it_moves_the_amount_once(budgets):
    budgets.reserve("pro-1", Decimal("3"), "vidgen-1", reservation_id="rsv-shots")

    first = budgets.reserve_from("rsv-shots", "shot-1", Decimal("1"), "vidgen-1")
    again = budgets.reserve_from("rsv-shots", "shot-1", Decimal("1"), "vidgen-1")

    assert again.reservation_id == first.reservation_id
    assert budgets.get("rsv-shots").consumed == Decimal("1")


def test_given_too_little_left_when_a_shot_reserves_from_it_then_it_is_refused_naming_the_numbers(budgets):
    budgets.reserve("pro-1", Decimal("1"), "vidgen-1", reservation_id="rsv-shots")
    budgets.reserve_from("rsv-shots", "shot-1", Decimal("0.75"), "vidgen-1")

    with pytest.raises(BudgetExceeded) as refused:
        budgets.reserve_from("rsv-shots", "shot-2", Decimal("0.50"), "vidgen-1")

    assert refused.value.reason == "the production reservation rsv-shots has 0.25 USD left < 0.50 USD requested"


def test_given_a_released_production_reservation_when_a_shot_reserves_then_it_is_refused(budgets):
    budgets.reserve("pro-1", Decimal("1"), "vidgen-1", reservation_id="rsv-shots")
    budgets.release("rsv-shots")

    with pytest.raises(BudgetExceeded, match="is RELEASED"):
        budgets.reserve_from("rsv-shots", "shot-1", Decimal("0.5"), "vidgen-1")


def test_given_shots_and_their_production_when_all_are_settled_then_nothing_stays_reserved(budgets):
    budgets.reserve("pro-1", Decimal("3"), "vidgen-1", reservation_id="rsv-shots")
    one = budgets.reserve_from("rsv-shots", "shot-1", Decimal("1"), "vidgen-1")
    two = budgets.reserve_from("rsv-shots", "shot-2", Decimal("1"), "vidgen-1")

    budgets.settle(one.reservation_id)
    budgets.release(two.reservation_id)
    assert reserved(budgets) == Decimal("1")  # the production's untaken rest
    budgets.release("rsv-shots")

    assert reserved(budgets) == 0
    assert budgets.scope_state(DAY)["headroom"] == Decimal("10")
