"""Budgets under concurrency: every test runs real threads against one moto
table whose requests are made atomic (see the ``atomic_requests`` fixture:
moto on its own does not serialise them, so these tests would prove nothing)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE, OperationLog
from vidpipe.errors import BudgetExceeded
from vidpipe.spend.budgets import Budgets, ReservationState
from vidpipe.spend.ledger import Ledger, LedgerEntry, entry_id_for
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
    ledger = Ledger(TABLE, client=ddb, clock=clock)
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

    # Each job makes calls that cost a little less than it reserved, then reconciles from its ledger.
    def settle(reservation):
        for n in range(2):
            ledger.record(LedgerEntry(
                entry_id=entry_id_for(reservation.job_id, "analyze", f"chunk-{n}"), job_id=reservation.job_id,
                step="analyze", provider="google", model="gemini-2.5-flash",
                cost_usd=Decimal("0.0712345") + Decimal(n) / 1000))
        return budgets.reconcile(reservation.reservation_id, ledger.job_totals(reservation.job_id).cost_usd)

    with ScopeSampler(budgets, DAY) as sampler, ThreadPoolExecutor(max_workers=10) as pool:
        assert all(pool.map(settle, granted))
    assert all(s["spent"] + s["reserved"] <= Decimal("3.00") for s in history.states + sampler.samples)

    spent_by_ledger = sum(e.cost_usd for r in granted for e in ledger.entries(r.job_id))
    for ref in (DAY, MONTH):
        scope = budgets.scope_state(ref)
        assert scope["reserved"] == 0
        assert scope["spent"] == spent_by_ledger == ledger.total().cost_usd
    assert spent_by_ledger == 10 * (Decimal("0.071235") + Decimal("0.072235"))  # each cost rounded to the µ$


def test_given_one_reservation_when_reconcile_and_release_race_then_exactly_one_wins(budgets):
    reservation = budgets.reserve("job-1", Decimal("1.00"), "gpt-4.1")
    start = threading.Barrier(8)

    def settle(i):
        start.wait()
        if i % 2:
            return "reconciled" if budgets.reconcile(reservation.reservation_id, Decimal("0.60")) else None
        return "released" if budgets.release(reservation.reservation_id) else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = [w for w in pool.map(settle, range(8)) if w]

    scope = budgets.scope_state(DAY)
    assert scope["reserved"] == 0
    # Whatever the order, the call's cost is counted once: a release that won first is
    # followed by a late reconcile that still adds the spend.
    assert scope["spent"] == Decimal("0.60")
    assert wins.count("reconciled") == 1 and wins.count("released") <= 1


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
