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
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from typing import TYPE_CHECKING

from vidpipe_local.cli import CommandError, add_common_options

if TYPE_CHECKING:  # imported where used: `vidpipe status` and friends start faster without them
    from vidpipe.spend.ledger import AggregateBy, Ledger, LedgerEntry, SpendTotals

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
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.profile and not args.aws:
        raise CommandError("--profile only applies with --aws")
    if not args.aws:
        from vidpipe_local.commands.status import require_served_stack

        require_served_stack(getattr(args, "stack", None))  # fast: no stack is built to find nothing
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from vidpipe.config import Settings
    from vidpipe.spend.ledger import Ledger

    try:
        if args.aws:
            client = boto3.session.Session(profile_name=args.profile).client("dynamodb")
            table = args.table or Settings().table_name
            print(f"stack: the deployed table {table}", file=sys.stderr)
            ledger = Ledger(table, client=client)
            require_job(ledger, args.job)
            print(render_spend(ledger, job=args.job, by=args.by, as_json=args.json))
            return 0
        from vidpipe_local.stack.session import NoStack, stack_session  # heavy (moto): only when used

        try:
            with stack_session(stack_url=getattr(args, "stack", None)) as stack:
                stack.announce(sys.stderr)
                table = args.table or stack.settings.table_name
                ledger = Ledger(table, client=stack.client("dynamodb"))
                require_job(ledger, args.job)
                print(render_spend(ledger, job=args.job, by=args.by, as_json=args.json, to_wall=stack.real_time))
        except NoStack as exc:
            raise CommandError(str(exc), 2) from None
        return 0
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(f"cannot read the ledger: {exc}") from exc


def require_job(ledger: Ledger, job: str | None) -> None:
    """``--job`` must name a job: one the table holds a record or ledger entries of
    (a job that made no call shows zeros)."""
    from vidpipe.jobs import JobStore

    if job is not None and not ledger.entries(job) and not JobStore(ledger.table, client=ledger.ddb).get(job):
        raise CommandError(f"no such job: {job}")


def render_spend(ledger: Ledger, job: str | None = None, by: AggregateBy | None = None,
                 as_json: bool = False, to_wall: Callable[[datetime], datetime] | None = None) -> str:
    """``to_wall`` maps an entry's timestamp to wall-clock time (a local stack's clock
    runs faster than real time, and so do the timestamps it wrote)."""
    if job is None:
        rows, total = ledger.aggregates(by or "day"), ledger.total()
    else:
        entries, total = ledger.entries(job), ledger.job_totals(job)
        if to_wall is not None:
            entries = [e.model_copy(update={"created_at": to_wall(e.created_at)}) for e in entries]
        rows = _grouped(entries, by) if by else sorted(entries, key=lambda e: (e.created_at, e.entry_id))
    from vidpipe.spend.ledger import LedgerEntry

    if as_json:
        return json.dumps({"job": job, "by": by or ("day" if job is None else None),
                           "rows": [row.model_dump() for row in rows], "total": total.model_dump()},
                          indent=2, default=_json_value)
    columns = _ENTRY_COLUMNS if rows and isinstance(rows[0], LedgerEntry) else _TOTAL_COLUMNS
    return _table(columns, [_cells(row, columns) for row in rows], _cells(total, columns, label="TOTAL"))


def _grouped(entries: list[LedgerEntry], by: AggregateBy) -> list[SpendTotals]:
    from vidpipe.spend.ledger import SUMMED, SpendTotals

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
    from vidpipe.spend.prices import quantize_usd

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
