"""The money invariants, checked after a run on the local stack (a helper, no tests).

``assert_money_invariants(stack)`` reads two independent accounts and holds
them against each other (the team contract, "The money design"):

- the provider emulator's bill (``Emulator.bill()``, docs/emulator-bill.md):
  what a real provider would charge, computed without vidpipe's code;
- vidpipe's DynamoDB table, read raw with a Scan (fine in a test): ledger
  entries (``JOB#<job>`` / ``LEDGER#…``), intents (``INTENT#…``), job
  totals, the grand total, budget scopes (``BUDGET#<scope>`` / period) and
  reservations (``RESERVATION#<id>``, ``RESERVATIONS#LIVE`` index).

Invariants:

1. The ledger equals the bill. Every bill item has exactly one ledger entry
   whose ``call_key`` is the item's ``id`` or its client reference (chat: the
   ``X-Client-Request-Id`` sent; video: the provider job id or the
   ``Idempotency-Key``). A confirmed entry carries exactly the billed figures
   (chat: input and output tokens; video: clip seconds). An unconfirmed
   entry costs at least what the billed figures cost at the stack's prices,
   and may have no bill item (an ambiguous outcome, e.g. a connection reset).
   A confirmed entry with no bill item is money recorded that nobody billed.
2. Budget ``spent`` equals the ledger: the global day scopes sum to the
   ledger total, so do the global month scopes; each model scope sums to
   that model's entries; each job scope equals that job's entries. The
   ledger's own totals (``AGG#total``, each job's ``TOTALS``) agree too.
3. No reservation is LIVE (call it after the sweep), and no intent is left
   open (``allow_open_intents=True`` skips that for a check mid-run).
4. Each budget scope's ``reserved`` is what the LIVE reservations holding it
   have left (amount − consumed): zero once none is LIVE, so a settle or
   release that forgot a scope cannot shrink its headroom for good. Its
   ``headroom`` is ``limit − spent − reserved``.

Run it when the work is finished: a video job that completes on the
emulator clock later appears on a later bill.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer

_MS = Decimal("0.001")
_deserializer = TypeDeserializer()


@dataclass
class MoneyReport:
    """What was compared, for a test that wants to assert more (or print it)."""

    bill: dict
    entries: list[dict]
    ledger_usd: Decimal
    matched: list[tuple[dict, dict]] = field(default_factory=list)  # (bill item, ledger entry)
    unbilled_unconfirmed: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def assert_money_invariants(stack, prices=None, allow_open_intents: bool = False) -> MoneyReport:
    """Raise AssertionError listing every broken invariant; return the report otherwise.

    ``prices``: a ``vidpipe.spend.prices.PriceTable`` (default: the stack's, from its
    function environment) to price unconfirmed entries against the bill.
    """
    report = check_money_invariants(stack, prices, allow_open_intents)
    if report.problems:
        lines = "\n  ".join(report.problems)
        raise AssertionError(f"{len(report.problems)} money invariant(s) broken:\n  {lines}")
    return report


def check_money_invariants(stack, prices=None, allow_open_intents: bool = False) -> MoneyReport:
    """The same checks, returning the problems instead of raising."""
    items = _scan(stack.ddb, stack.table)
    entries = [item for item in items if item["pk"].startswith("JOB#") and item["sk"].startswith("LEDGER#")]
    report = MoneyReport(bill=stack.emulator.bill(), entries=entries,
                         ledger_usd=sum((_usd(e["cost_usd"]) for e in entries), Decimal(0)))
    _ledger_matches_bill(report, prices if prices is not None else _stack_prices())
    _budgets_match_ledger(report, items)
    _nothing_left_open(report, items, allow_open_intents)
    _scopes_balance(report, items)
    return report


# -- 1. ledger == bill --------------------------------------------------------


def _references(item: dict) -> set[str]:
    return {ref for ref in (item["id"], item["client_request_id"], item["idempotency_key"]) if ref}


def _ledger_matches_bill(report: MoneyReport, prices) -> None:
    by_key: dict[str, list[dict]] = defaultdict(list)
    for entry in report.entries:
        by_key[entry.get("call_key", "")].append(entry)
    claimed: set[int] = set()
    for item in report.bill["items"]:
        found = [entry for ref in sorted(_references(item)) for entry in by_key.get(ref, [])]
        unique = list({id(entry): entry for entry in found}.values())
        reference = item["client_request_id"] or item["idempotency_key"]
        label = f"bill item {item['kind']} {item['id']} (client ref {reference})"
        if len(unique) != 1:
            report.problems.append(f"{label}: {len(unique)} ledger entries, expected exactly 1"
                                   + (f" ({', '.join(_describe(e) for e in unique)})" if unique else ""))
            claimed.update(id(entry) for entry in unique)
            continue
        entry = unique[0]
        claimed.add(id(entry))
        report.matched.append((item, entry))
        problem = _compare(item, entry, prices)
        if problem:
            report.problems.append(f"{label} vs {_describe(entry)}: {problem}")
    for entry in report.entries:
        if id(entry) in claimed:
            continue
        if entry.get("confirmed", True):
            report.problems.append(f"{_describe(entry)} is confirmed but nothing on the bill matches its call_key")
        else:
            report.unbilled_unconfirmed.append(entry)


def _compare(item: dict, entry: dict, prices) -> str | None:
    billed = _billed_figures(item)
    recorded = _recorded_figures(item["kind"], entry)
    if entry.get("confirmed", True):
        return None if recorded == billed else f"confirmed figures {recorded} != billed {billed}"
    billed_usd = _billed_cost(item, prices)
    if _usd(entry["cost_usd"]) < billed_usd:
        return (f"unconfirmed estimate ${_usd(entry['cost_usd'])} ({recorded}) is below the billed "
                f"${billed_usd} ({billed})")
    return None


def _billed_figures(item: dict) -> dict:
    if item["kind"] == "chat":
        return {"input_tokens": int(item["input_tokens"]), "output_tokens": int(item["output_tokens"])}
    return {"clip_seconds": Decimal(str(item["seconds"])).quantize(_MS)}


def _recorded_figures(kind: str, entry: dict) -> dict:
    if kind == "chat":
        return {"input_tokens": int(entry.get("input_tokens", 0)), "output_tokens": int(entry.get("output_tokens", 0))}
    return {"clip_seconds": Decimal(entry.get("clip_seconds", 0)).quantize(_MS)}


def _billed_cost(item: dict, prices) -> Decimal:
    from vidpipe.spend.prices import quantize_usd

    if item["kind"] == "chat":
        return quantize_usd(prices.chat_cost(item["model"], int(item["input_tokens"]), int(item["output_tokens"])))
    return quantize_usd(prices.video_cost(item["model"], Decimal(str(item["seconds"])), item["resolution"],
                                          item["fps"]))


# -- 2. budget spent == ledger -------------------------------------------------


def _budgets_match_ledger(report: MoneyReport, items: list[dict]) -> None:
    ledger = report.ledger_usd
    per_job: dict[str, Decimal] = defaultdict(Decimal)
    per_model: dict[str, Decimal] = defaultdict(Decimal)
    for entry in report.entries:
        per_job[entry["job_id"]] += _usd(entry["cost_usd"])
        per_model[entry["model"]] += _usd(entry["cost_usd"])

    day = month = Decimal(0)
    model_spent: dict[str, Decimal] = defaultdict(Decimal)
    for item in items:
        pk = item["pk"]
        if not pk.startswith("BUDGET#"):
            continue
        scope, period, spent = pk.removeprefix("BUDGET#"), item["sk"], _usd(item.get("spent", 0))
        if scope == "global" and period.startswith("day:"):
            day += spent
        elif scope == "global" and period.startswith("month:"):
            month += spent
        elif scope.startswith("model:"):
            model_spent[scope.removeprefix("model:")] += spent
        elif scope.startswith("job:"):
            job_id = scope.removeprefix("job:")
            if spent != per_job.get(job_id, Decimal(0)):
                report.problems.append(f"budget job:{job_id} spent ${spent} != its ledger ${per_job.get(job_id, 0)}")
    if day != ledger:
        report.problems.append(f"budget spent over the global day scopes ${day} != ledger ${ledger}")
    if month != ledger:
        report.problems.append(f"budget spent over the global month scopes ${month} != ledger ${ledger}")
    for model, spent in model_spent.items():
        if spent != per_model.get(model, Decimal(0)):
            report.problems.append(f"budget model:{model} spent ${spent} != its ledger ${per_model.get(model, 0)}")

    for item in items:
        if item["pk"] == "AGG#total" and item["sk"] == "all" and _usd(item.get("cost_usd", 0)) != ledger:
            report.problems.append(f"AGG#total cost ${_usd(item.get('cost_usd', 0))} != ledger ${ledger}")
        if item["pk"].startswith("JOB#") and item["sk"] == "TOTALS":
            job_id = item["pk"].removeprefix("JOB#")
            if _usd(item.get("cost_usd", 0)) != per_job.get(job_id, Decimal(0)):
                report.problems.append(f"job {job_id} TOTALS ${_usd(item.get('cost_usd', 0))} != its ledger "
                                       f"${per_job.get(job_id, 0)}")


# -- 3. nothing left open --------------------------------------------------------


def _nothing_left_open(report: MoneyReport, items: list[dict], allow_open_intents: bool) -> None:
    for item in items:
        if item["pk"].startswith("RESERVATION#") and item.get("state") == "LIVE":
            report.problems.append(f"reservation {item['pk'].removeprefix('RESERVATION#')} of job "
                                   f"{item.get('job_id')} is still LIVE (amount ${item.get('amount')}, "
                                   f"consumed ${item.get('consumed', 0)})")
        elif item["pk"] == "RESERVATIONS#LIVE":
            report.problems.append(f"the live-reservation index still lists {item['sk']}")
        elif not allow_open_intents and item["pk"].startswith("JOB#") and item["sk"].startswith("INTENT#"):
            report.problems.append(f"intent {item['sk'].removeprefix('INTENT#')} of {item['pk']} is still open")


# -- 4. reserved and headroom balance ----------------------------------------------


def _scopes_balance(report: MoneyReport, items: list[dict]) -> None:
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for item in items:
        if item["pk"].startswith("RESERVATION#") and item.get("state") == "LIVE":
            rest = _usd(item.get("amount", 0)) - _usd(item.get("consumed", 0))
            for scope, period in item.get("scopes", []):
                held[(scope, period)] += rest
    for item in items:
        if not item["pk"].startswith("BUDGET#"):
            continue
        ref = (item["pk"].removeprefix("BUDGET#"), item["sk"])
        label = f"budget {ref[0]} {ref[1]}"
        reserved, spent = _usd(item.get("reserved", 0)), _usd(item.get("spent", 0))
        if reserved != held.get(ref, Decimal(0)):
            report.problems.append(f"{label} reserved ${reserved} != what its LIVE reservations still hold "
                                   f"${held.get(ref, Decimal(0))}")
        if "limit" in item and "headroom" in item:
            expected = _usd(item["limit"]) - spent - reserved
            if _usd(item["headroom"]) != expected:
                report.problems.append(f"{label} headroom ${_usd(item['headroom'])} != limit − spent − reserved "
                                       f"${expected}")


# -- reading ------------------------------------------------------------------------


def _scan(ddb, table: str) -> list[dict]:
    items: list[dict] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += [{k: _deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"]]
    return items


def _stack_prices():
    from vidpipe.config import Settings
    from vidpipe.spend.prices import PriceTable

    return PriceTable.load(Settings())  # the stack's function environment is in os.environ while it runs


def _usd(value) -> Decimal:
    return Decimal(str(value))


def _describe(entry: dict) -> str:
    state = "confirmed" if entry.get("confirmed", True) else "unconfirmed"
    return (f"ledger entry {entry.get('call_key')!r} of job {entry.get('job_id')} ({entry.get('step')}, "
            f"{entry.get('model')}, {state}, ${entry.get('cost_usd')})")
