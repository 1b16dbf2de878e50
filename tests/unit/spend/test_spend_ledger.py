from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from spend_testkit import T0, TABLE, ConflictOnce, OperationLog
from vidpipe.spend.ledger import Ledger, LedgerEntry, entry_id_for
from vidpipe_local.clock import VirtualClock


def entry(job="job-1", step="analyze", key="chunk-0", model="gemini-2.5-flash", provider="google",
          cost="0.001774", at=None, **figures) -> LedgerEntry:
    return LedgerEntry(entry_id=entry_id_for(job, key), job_id=job, step=step, provider=provider, model=model,
                       cost_usd=Decimal(cost), created_at=at, **figures)


@pytest.fixture
def ledger(ddb):
    return Ledger(TABLE, client=ddb, clock=VirtualClock(T0))


def test_given_the_same_call_when_its_entry_id_is_derived_then_it_is_stable_and_distinct_per_call():
    assert entry_id_for("job-1", "ccr-abc") == entry_id_for("job-1", "ccr-abc")
    assert entry_id_for("job-1", "ccr-abc") != entry_id_for("job-1", "ccr-abd")
    assert entry_id_for("job-1", "x") != entry_id_for("job-2", "x")


def test_given_an_entry_when_recorded_twice_then_it_counts_once_everywhere(ledger):
    call = entry(input_tokens=2_580, output_tokens=400, images=10)

    assert ledger.record(call) is True
    assert ledger.record(call) is False

    assert [e.entry_id for e in ledger.entries("job-1")] == [call.entry_id]
    for totals in [ledger.job_totals("job-1"), ledger.total(), *ledger.aggregates("day"),
                   *ledger.aggregates("month"), *ledger.aggregates("model"), *ledger.aggregates("provider")]:
        assert (totals.calls, totals.cost_usd, totals.input_tokens, totals.images) == (1, Decimal("0.001774"), 2580, 10)


def test_given_an_entry_without_a_time_when_recorded_then_the_clock_stamps_it_and_picks_its_day(ledger):
    ledger.record(entry())

    [stored] = ledger.entries("job-1")
    assert stored.created_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert [a.key for a in ledger.aggregates("day")] == ["2026-11-22"]
    assert [a.key for a in ledger.aggregates("month")] == ["2026-11"]


def test_given_entries_across_days_models_and_jobs_when_aggregated_then_each_total_is_the_sum_of_its_entries(ddb):
    log = OperationLog(ddb)
    ledger = Ledger(TABLE, client=log)
    calls = [
        entry("job-1", key="a", cost="0.010000", at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC), input_tokens=100),
        entry("job-1", key="b", cost="0.020000", at=datetime(2026, 11, 1, 0, 0, tzinfo=UTC), input_tokens=200),
        entry("job-2", step="generate", key="c", model="sora-2", provider="openai", cost="0.800000",
              at=datetime(2026, 11, 1, 9, tzinfo=UTC), clip_seconds=Decimal(8)),
        entry("job-2", step="enhance", key="d", cost="0.000123", at=datetime(2026, 11, 2, tzinfo=UTC),
              output_tokens=49),
    ]
    for call in calls:
        ledger.record(call)
    log.operations.clear()

    def sums(key_of):
        expected = {}
        for call in calls:
            expected[key_of(call)] = expected.get(key_of(call), Decimal(0)) + call.cost_usd
        return expected

    assert {a.key: a.cost_usd for a in ledger.aggregates("day")} == sums(lambda c: f"{c.created_at:%Y-%m-%d}")
    assert {a.key: a.cost_usd for a in ledger.aggregates("month")} == sums(lambda c: f"{c.created_at:%Y-%m}")
    assert {a.key: a.cost_usd for a in ledger.aggregates("model")} == sums(lambda c: c.model)
    assert {a.key: a.cost_usd for a in ledger.aggregates("provider")} == sums(lambda c: c.provider)
    assert ledger.total().cost_usd == sum(c.cost_usd for c in calls) == Decimal("0.830123")
    assert ledger.total().clip_seconds == Decimal(8)
    assert ledger.job_totals("job-2").cost_usd == sum(e.cost_usd for e in ledger.entries("job-2"))
    assert "scan" not in log.operations


def test_given_an_unknown_grouping_when_aggregated_then_it_is_refused(ledger):
    with pytest.raises(ValueError, match="week"):
        ledger.aggregates("week")


def test_given_a_transaction_conflict_when_recording_then_it_is_retried_and_counted_once(ddb):
    client = ConflictOnce(ddb)
    backoffs = []
    ledger = Ledger(TABLE, client=client, sleep=backoffs.append)

    assert ledger.record(entry(at=datetime(2026, 11, 22, tzinfo=UTC))) is True

    assert client.conflicts == 1 and len(backoffs) == 1 and 0 <= backoffs[0] <= 0.025
    assert ledger.total().calls == 1


def test_given_many_lambdas_recording_the_same_call_when_they_race_then_exactly_one_counts(
        ledger, atomic_requests):
    call = entry(cost="0.250000", input_tokens=1000)

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda _: ledger.record(call), range(20)))

    assert outcomes.count(True) == 1
    assert (ledger.total().calls, ledger.total().cost_usd) == (1, Decimal("0.25"))
    assert ledger.job_totals("job-1").input_tokens == 1000
