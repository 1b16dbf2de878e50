"""``vidpipe spend``: what the providers cost, read from the ledger.

    vidpipe spend                      totals per day, and the grand total
    vidpipe spend --by model           totals per model (day, month, model, provider)
    vidpipe spend --job ID             the job's ledger entries and its totals
    vidpipe spend --job ID --by model  the job's entries grouped
    --json                             the same figures as JSON (money as exact strings)
    --aws [--profile P] [--table T]    the deployed table instead of the local stack

Every figure comes from the ledger's items: entries, or totals that the ledger
keeps as exact sums of them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.config import Settings
from vidpipe.spend.ledger import SUMMED, AggregateBy, Ledger, LedgerEntry, SpendTotals
from vidpipe.spend.prices import quantize_usd
from vidpipe_local.cli import CommandError

_TOTAL_COLUMNS = ("key", "calls", "input_tokens", "output_tokens", "images", "clip_seconds", "cost_usd")
_ENTRY_COLUMNS = ("created_at", "step", "provider", "model", "input_tokens", "output_tokens", "images",
                  "clip_seconds", "latency_ms", "cost_usd")
_BY = ("day", "month", "model", "provider")


def register(subparsers) -> None:
    parser = subparsers.add_parser("spend", help="provider spend from the ledger: per job, day, month, model, provider")
    parser.add_argument("--job", help="one job's ledger entries and totals")
    parser.add_argument("--by", choices=_BY, help="group totals (default: day; with --job: list entries)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--aws", action="store_true", help="read the deployed table with your AWS credentials")
    parser.add_argument("--profile", help="AWS profile (with --aws)")
    parser.add_argument("--table", help="DynamoDB table (default: Settings.table_name)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.profile and not args.aws:
        raise CommandError("--profile only applies with --aws")
    try:
        if args.aws:
            client = boto3.session.Session(profile_name=args.profile).client("dynamodb")
            ledger = Ledger(args.table or Settings().table_name, client=client)
            print(render_spend(ledger, job=args.job, by=args.by, as_json=args.json))
            return 0
        from vidpipe_local.stack.session import stack_session  # heavy (moto): only when used

        with stack_session() as stack:
            ledger = Ledger(args.table or stack.settings.table_name, client=stack.client("dynamodb"))
            print(render_spend(ledger, job=args.job, by=args.by, as_json=args.json))
        return 0
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(f"cannot read the ledger: {exc}") from exc


def render_spend(ledger: Ledger, job: str | None = None, by: AggregateBy | None = None,
                 as_json: bool = False) -> str:
    if job is None:
        rows, total = ledger.aggregates(by or "day"), ledger.total()
    else:
        entries, total = ledger.entries(job), ledger.job_totals(job)
        rows = _grouped(entries, by) if by else sorted(entries, key=lambda e: (e.created_at, e.entry_id))
    if as_json:
        return json.dumps({"job": job, "by": by or ("day" if job is None else None),
                           "rows": [row.model_dump() for row in rows], "total": total.model_dump()},
                          indent=2, default=_json_value)
    columns = _ENTRY_COLUMNS if rows and isinstance(rows[0], LedgerEntry) else _TOTAL_COLUMNS
    return _table(columns, [_cells(row, columns) for row in rows], _cells(total, columns, label="TOTAL"))


def _grouped(entries: list[LedgerEntry], by: AggregateBy) -> list[SpendTotals]:
    groups: dict[str, dict] = defaultdict(lambda: {"calls": 0, **{name: 0 for name in SUMMED}})
    for entry in entries:
        key = {"day": f"{entry.created_at:%Y-%m-%d}", "month": f"{entry.created_at:%Y-%m}",
               "model": entry.model, "provider": entry.provider}[by]
        groups[key]["calls"] += 1
        for name in SUMMED:
            groups[key][name] += getattr(entry, name)
    return [SpendTotals(key=key, **figures) for key, figures in sorted(groups.items())]


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"  # money stays exact
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cells(row: LedgerEntry | SpendTotals, columns: tuple[str, ...], label: str | None = None) -> list[str]:
    cells = []
    for column in columns:
        value = getattr(row, column, "")
        if column in ("key", "created_at") and label:
            value = label
        elif column == "created_at":
            value = value.strftime("%Y-%m-%d %H:%M:%S")
        elif column == "cost_usd":
            value = quantize_usd(value)  # every amount to the micro-dollar, as stored
        cells.append(f"{value:f}" if isinstance(value, Decimal) else str(value))
    return cells


def _table(columns: tuple[str, ...], rows: list[list[str]], total: list[str]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in [*rows, total])) for i, c in enumerate(columns)]
    numeric = {i for i, c in enumerate(columns) if c not in ("key", "created_at", "step", "provider", "model")}

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(columns)), rule, *map(line, rows), rule, line(total)])
