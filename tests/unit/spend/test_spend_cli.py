import argparse
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from spend_testkit import TABLE
from vidpipe.spend.ledger import Ledger, LedgerEntry, entry_id_for
from vidpipe_local.commands import spend as spend_command
from vidpipe_local.commands.spend import render_spend

CALLS = [
    ("job-1", "analyze", "c1", "google", "gemini-2.5-flash", "0.001774", datetime(2026, 10, 31, 23, 30), 2580, 400, 0),
    ("job-1", "analyze", "c2", "google", "gemini-2.5-flash", "0.001901", datetime(2026, 11, 1, 0, 5), 2580, 451, 0),
    ("job-1", "summarize", "s1", "openai", "gpt-4.1", "0.012345", datetime(2026, 11, 1, 0, 6), 4000, 543, 0),
    ("job-2", "enhance", "e1", "deepseek", "deepseek-v3.2", "0.000120", datetime(2026, 11, 2, 8), 300, 85, 0),
    ("job-2", "generate", "g1", "openai", "sora-2", "0.800000", datetime(2026, 11, 2, 8, 1), 0, 0, 8),
]


@pytest.fixture
def entries(ddb):
    ledger = Ledger(TABLE, client=ddb)
    recorded = []
    for job, step, key, provider, model, cost, at, tokens_in, tokens_out, clip in CALLS:
        entry = LedgerEntry(entry_id=entry_id_for(job, key), job_id=job, step=step, provider=provider,
                            model=model, cost_usd=Decimal(cost), created_at=at.replace(tzinfo=UTC),
                            input_tokens=tokens_in, output_tokens=tokens_out, clip_seconds=Decimal(clip))
        ledger.record(entry)
        recorded.append(entry)
    return ledger, recorded


def rows(table: str) -> dict[str, list[str]]:
    """First column → the other cells, for every data row of a rendered table."""
    lines = [line for line in table.splitlines()[2:] if not line.startswith("-")]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines)}


def group(recorded, key_of):
    sums: dict[str, Decimal] = {}
    for entry in recorded:
        sums[key_of(entry)] = sums.get(key_of(entry), Decimal(0)) + entry.cost_usd
    return sums


@pytest.mark.parametrize("by, key_of", [
    ("day", lambda e: f"{e.created_at:%Y-%m-%d}"), ("month", lambda e: f"{e.created_at:%Y-%m}"),
    ("model", lambda e: e.model), ("provider", lambda e: e.provider)])
def test_given_a_ledger_when_spend_is_shown_by_a_grouping_then_every_figure_is_a_sum_of_entries(entries, by, key_of):
    ledger, recorded = entries

    table = rows(render_spend(ledger, by=by))

    expected = group(recorded, key_of)
    assert {key: Decimal(cells[-1]) for key, cells in table.items() if key != "TOTAL"} == expected
    assert Decimal(table["TOTAL"][-1]) == sum(e.cost_usd for e in recorded) == Decimal("0.816140")
    assert int(table["TOTAL"][0]) == len(recorded)  # calls
    assert int(table["TOTAL"][1]) == sum(e.input_tokens for e in recorded)


def test_given_a_job_when_its_spend_is_shown_then_entries_and_the_total_match_the_ledger(entries):
    ledger, recorded = entries
    job = [e for e in recorded if e.job_id == "job-1"]

    text = render_spend(ledger, job="job-1")

    lines = text.splitlines()
    assert lines[0].split() == ["created_at", "step", "provider", "model", "input_tokens", "output_tokens",
                                "images", "clip_seconds", "latency_ms", "cost_usd"]
    costs = [Decimal(line.split()[-1]) for line in lines[2:-2]]
    assert costs == [e.cost_usd for e in job]
    assert Decimal(lines[-1].split()[-1]) == sum(costs) == Decimal("0.016020")


def test_given_a_job_and_a_grouping_when_shown_then_the_job_entries_are_grouped(entries):
    ledger, recorded = entries

    table = rows(render_spend(ledger, job="job-2", by="provider"))

    assert {k: Decimal(v[-1]) for k, v in table.items()} == {"deepseek": Decimal("0.00012"),
                                                             "openai": Decimal("0.8"), "TOTAL": Decimal("0.80012")}


def test_given_json_output_when_shown_then_money_is_exact_and_sums_match(entries):
    ledger, recorded = entries

    document = json.loads(render_spend(ledger, by="model", as_json=True))

    assert document["by"] == "model"
    assert {r["key"]: Decimal(r["cost_usd"]) for r in document["rows"]} == group(recorded, lambda e: e.model)
    assert document["total"]["cost_usd"] == "0.816140"
    assert document["total"]["clip_seconds"] == "8.000"


def test_given_an_unknown_job_when_shown_then_totals_are_zero(entries):
    ledger, _ = entries

    assert rows(render_spend(ledger, job="nope"))["TOTAL"][-1] == "0.000000"


def test_given_the_cli_when_spend_runs_against_aws_then_it_reads_the_named_table(entries, capsys):
    parser = argparse.ArgumentParser(prog="vidpipe")
    spend_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["spend", "--aws", "--table", TABLE, "--by", "provider", "--json"])

    assert args.func(args) == 0

    document = json.loads(capsys.readouterr().out)
    assert {r["key"] for r in document["rows"]} == {"deepseek", "google", "openai"}
    assert Decimal(document["total"]["cost_usd"]) == Decimal("0.816140")


def test_given_the_local_stack_when_spend_runs_then_it_reads_the_stacks_table(entries, capsys, monkeypatch):
    from contextlib import contextmanager

    from vidpipe.config import Settings
    from vidpipe_local.stack import session

    ledger, _ = entries

    class LocalSession:
        settings = Settings(table_name=TABLE)

        def client(self, service):
            assert service == "dynamodb"
            return ledger.ddb

        def announce(self, stream=None):
            pass

        def real_time(self, value):
            return value

    from vidpipe_local.commands import status

    monkeypatch.setattr(status, "require_served_stack", lambda url: None)
    monkeypatch.setattr(session, "stack_session", contextmanager(lambda **_: (yield LocalSession())))

    assert spend_command.run(argparse.Namespace(job="job-2", by=None, json=False, aws=False, profile=None,
                                                table=None)) == 0

    assert rows(capsys.readouterr().out)["TOTAL"][-1] == "0.800120"


def test_given_a_profile_without_aws_when_spend_runs_then_it_is_a_usage_error():
    from vidpipe_local.cli import CommandError, build_parser

    args = build_parser().parse_args(["spend", "--profile", "prod"])

    with pytest.raises(CommandError, match="--profile only applies with --aws"):
        args.func(args)
