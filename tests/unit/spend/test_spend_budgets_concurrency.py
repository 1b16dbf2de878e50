"""Budgets under concurrency: every test runs real threads against one moto
table whose requests are made atomic (see the ``atomic_requests`` fixture:
moto on its own does not serialise them, so these tests would prove nothing)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE, OperationLog, accounting_with, gpt_call
from vidpipe.accounting import ProviderCall
from vidpipe.errors import BudgetExceeded
from vidpipe.spend.budgets import Budgets, ReservationState
from vidpipe.spend.scopes import BudgetConfig, ScopeRef
from vidpipe_local.clock import VirtualClock

DAY = ScopeRef("global", "day:2026-11-22")
MONTH = ScopeRef("global", "month:2026-11")


@pytest.fixture
def clock():
    return VirtualClock(T0)


@pytest.fixture
def history(atomic_requests):
    atomic_requests.watch(DAY.key)
    return atomic_requests


@pytest.fixture
def budgets(ddb, clock, history):
    return Budgets(TABLE, BudgetConfig(daily_usd=Decimal("3.00"), monthly_usd=Decimal("100")), client=ddb,
                   clock=clock)


class ScopeSampler(threading.Thread):
    """Reads a scope item over and over while the others write to it."""

    def __init__(self, budgets, ref):
        super().__init__(daemon=True)
        self.budgets, self.ref = budgets, ref
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.0005):  # paced: a busy loop would starve the writers of the GIL
            self.samples.append(self.budgets.scope_state(self.ref))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join()


def test_given_room_for_ten_when_fifty_lambdas_reserve_at_once_then_exactly_ten_succeed_and_the_limit_always_holds(
        budgets, ddb, clock, history):
    accounting = accounting_with(ddb, budgets.config, clock)
    ledger = accounting.ledger
    start = threading.Barrier(50)

    def reserve(i):
        start.wait()
        try:
            return budgets.reserve(f"job-{i}", Decimal("0.30"), "gemini-2.5-flash")
        except BudgetExceeded as refused:
            return refused

    with ScopeSampler(budgets, DAY) as sampler, ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(reserve, range(50)))
    granted = [o for o in outcomes if not isinstance(o, BudgetExceeded)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]

    assert (len(granted), len(refused)) == (10, 40)
    assert all("day:2026-11-22 global" in r.reason and "3.00 limit" in r.reason for r in refused)
    # every state the item went through (one per request), and what a concurrent reader saw
    assert len(history.states) > 50 and sampler.samples
    for state in history.states + sampler.samples:
        assert state["spent"] + state["reserved"] <= Decimal("3.00")
        assert state["headroom"] == state["limit"] - state["spent"] - state["reserved"]

    # Each job makes calls that cost a little less than it reserved, then settles.
    def settle(reservation):
        for n in range(2):  # 0.071235 and 0.072235: 237,450 + n * 3,333 input tokens at $0.30 per million
            accounting.record_call(ProviderCall(
                job_id=reservation.job_id, step="analyze", call_key=f"ccr-{n}", provider="gemini",
                model="gemini-2.5-flash", input_tokens=237_450 + n * 3_333))
        return budgets.settle(reservation.reservation_id, ledger.job_totals(reservation.job_id).cost_usd)

    with ScopeSampler(budgets, DAY) as sampler, ThreadPoolExecutor(max_workers=10) as pool:
        assert all(pool.map(settle, granted))
    assert all(s["spent"] + s["reserved"] <= Decimal("3.00") for s in history.states + sampler.samples)

    spent_by_ledger = sum(e.cost_usd for r in granted for e in ledger.entries(r.job_id))
    for ref in (DAY, MONTH):
        scope = budgets.scope_state(ref)
        assert scope["reserved"] == 0
        assert scope["spent"] == spent_by_ledger == ledger.total().cost_usd
    assert spent_by_ledger == 10 * (Decimal("0.071235") + Decimal("0.072235"))  # each cost rounded to the µ$


def test_given_one_reservation_when_settle_and_release_race_then_exactly_one_hands_back_the_rest(
        budgets, ddb, clock):
    accounting = accounting_with(ddb, budgets.config, clock)
    reservation = budgets.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    accounting.record_call(gpt_call("job-1", "ccr-1", "0.60"))
    start = threading.Barrier(8)

    def finish(i):
        start.wait()
        if i % 2:
            return "settled" if budgets.settle(reservation.reservation_id) else None
        return "released" if budgets.release(reservation.reservation_id) else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = [w for w in pool.map(finish, range(8)) if w]

    scope = budgets.scope_state(DAY)
    assert len(wins) == 1
    assert (scope["spent"], scope["reserved"], scope["headroom"]) == (Decimal("0.60"), 0, Decimal("2.40"))


def test_given_twenty_calls_recording_against_one_reservation_when_the_job_settles_midway_then_spent_equals_the_ledger(
        budgets, ddb, clock, history):
    """Chunk Lambdas still recording while finalize settles: whichever way each race
    goes, every call lands in ``spent`` once and nothing stays reserved."""
    accounting = accounting_with(ddb, budgets.config, clock)
    reservation_id = accounting.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    start = threading.Barrier(21)

    def record(i):
        start.wait()
        accounting.record_call(gpt_call("job-1", f"ccr-{i}", "0.08"))  # 20 × 0.08 = 1.60: beyond the estimate

    def settle():
        start.wait()
        return accounting.settle("job-1", reservation_id)

    with ScopeSampler(budgets, DAY) as sampler, ThreadPoolExecutor(max_workers=21) as pool:
        recorded = [pool.submit(record, i) for i in range(20)]
        settled = pool.submit(settle)
        for future in recorded:
            future.result()
        settled.result()

    spent_by_ledger = sum(e.cost_usd for e in accounting.ledger.entries("job-1"))
    assert spent_by_ledger == Decimal("1.60") == accounting.ledger.job_totals("job-1").cost_usd
    for ref in (DAY, MONTH):
        scope = budgets.scope_state(ref)
        assert (scope["spent"], scope["reserved"]) == (spent_by_ledger, 0)
        assert scope["headroom"] == scope["limit"] - spent_by_ledger
    reservation = budgets.get(reservation_id)
    assert reservation.state is ReservationState.SETTLED and reservation.consumed <= Decimal("1.00")
    # Every committed state and every concurrent read kept the books: headroom = limit - spent - reserved,
    # and spent + reserved never went below the ledger's money (nothing handed back that was spent).
    for state in history.states + sampler.samples:
        assert state["headroom"] == state["limit"] - state["spent"] - state["reserved"]
        assert state["reserved"] >= 0


def test_given_calls_recording_while_the_expiry_sweep_runs_then_the_sweep_never_returns_consumed_money(
        budgets, ddb, clock, history):
    accounting = accounting_with(ddb, budgets.config, clock)
    accounting.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    clock.advance(901)  # past the reservation's expiry: its holder looks dead, but is still recording
    start = threading.Barrier(11)

    def record(i):
        start.wait()
        accounting.record_call(gpt_call("job-1", f"ccr-{i}", "0.07"))

    def sweep():
        start.wait()
        return accounting.sweep_expired()

    with ThreadPoolExecutor(max_workers=11) as pool:
        recorded = [pool.submit(record, i) for i in range(10)]
        swept = pool.submit(sweep)
        for future in recorded:
            future.result()
        assert swept.result() == 1

    scope = budgets.scope_state(DAY)
    assert (scope["spent"], scope["reserved"]) == (Decimal("0.70"), 0)
    assert scope["headroom"] == Decimal("3.00") - Decimal("0.70")


def test_given_a_reservation_whose_holder_died_when_sweeps_run_concurrently_then_it_is_released_once(
        budgets, clock):
    dead = budgets.reserve("job-dead", Decimal("1.00"), "gpt-4.1", ttl_s=900)
    alive = budgets.reserve("job-alive", Decimal("0.50"), "gpt-4.1", ttl_s=3600)
    clock.advance(901)

    start = threading.Barrier(4)

    def sweep(_):
        start.wait()
        return budgets.sweep_expired()

    with ThreadPoolExecutor(max_workers=4) as pool:
        released = list(pool.map(sweep, range(4)))

    assert sum(released) == 1
    assert budgets.sweep_expired() == 0
    assert budgets.get(dead.reservation_id).state is ReservationState.RELEASED
    assert budgets.get(alive.reservation_id).state is ReservationState.LIVE
    assert budgets.scope_state(DAY)["reserved"] == Decimal("0.50")
    assert budgets.scope_state(DAY)["headroom"] == Decimal("2.50")


def test_given_an_unexpired_reservation_when_swept_then_it_stays_and_no_scan_is_made(budgets, ddb, clock):
    log = OperationLog(ddb)
    sweeper = Budgets(TABLE, budgets.config, client=log, clock=clock)
    reservation = budgets.reserve("job-1", Decimal("1.00"), "gpt-4.1", ttl_s=900)
    clock.advance(899)

    assert sweeper.sweep_expired() == 0
    assert sweeper.sweep_expired(now=T0 + 900.001) == 1
    assert budgets.get(reservation.reservation_id).state is ReservationState.RELEASED
    assert "scan" not in log.operations and "get_paginator" in log.operations
