"""The spend ledger: one entry per billed provider call, and totals that are sums of them.

An entry is keyed by (job_id, call_key): the provider's identity of the call,
so a retried write of one call lands on the same item and a call made again
(a retried step, a re-POST) gets an entry of its own. The write of an entry
is one TransactWriteItems with the job totals, every aggregate (and, from
``DynamoAccounting.record_call``, the budget scopes and the reservation):
the entry's condition makes it count once everywhere or nowhere.

An entry is ``confirmed`` when its figures are the provider's usage, and
unconfirmed when they are our estimate (the usage could not be read). A
confirmed write replaces an unconfirmed entry of the same key; the totals get
the difference (``entry_items`` with ``previous``).

Intents: before a chat attempt the caller leaves an intent holding the call's
estimate; the entry's write deletes it, an abandoned attempt deletes it
plainly, and one left by a Lambda that died becomes an unconfirmed entry.

Items (single table, keys pk/sk):

    JOB#<job_id>   / LEDGER#<entry_id>   the entry
    JOB#<job_id>   / INTENT#<call_key>   an attempt under way: its estimate, opened_at
    JOB#<job_id>   / TOTALS              job totals
    INTENTS#OPEN   / <opened_ms>#<job_id>#<call_key>   index of intents, by age
    AGG#day        / <YYYY-MM-DD>        totals per UTC day
    AGG#month      / <YYYY-MM>           totals per UTC month
    AGG#model      / <model>             totals per model
    AGG#provider   / <provider>          totals per provider
    AGG#total      / all                 grand total

Totals items hold ``calls, cost_usd, input_tokens, output_tokens, images,
clip_seconds``. Aggregates of one kind share a partition, so one Query lists
them (no Scan); the cost is one hot partition per kind, fine at the write rates
of a budgeted fleet. The intent index is written and deleted in the same
transactions as its intent, so the sweep finds stale intents with one Query.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vidpipe import aws
from vidpipe.accounting import ProviderCall
from vidpipe.jobs import from_item, stable_id, to_item
from vidpipe.spend.ddb import Clock, cancellation_reasons, clock_fn, query_items, transact
from vidpipe.spend.prices import quantize_usd

AggregateBy = Literal["day", "month", "model", "provider"]
SUMMED = ("cost_usd", "input_tokens", "output_tokens", "images", "clip_seconds")
INTENT_INDEX_PK = "INTENTS#OPEN"
_CALL_FIELDS = tuple(f.name for f in dataclasses.fields(ProviderCall))


def entry_id_for(job_id: str, call_key: str) -> str:
    """A deterministic entry id: one per (job, provider call), whatever step or retry writes it."""
    return stable_id("le", job_id, call_key)


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    job_id: str
    step: str
    provider: str
    model: str
    call_key: str = ""
    confirmed: bool = True  # False: the figures are our estimate, the provider's usage was unreadable
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    images: int = Field(default=0, ge=0)
    clip_seconds: Decimal = Field(default=Decimal(0), ge=0)
    latency_ms: int = Field(default=0, ge=0)
    cost_usd: Decimal = Field(ge=0)
    request_id: str | None = None
    created_at: datetime | None = None  # stamped by Ledger.record when absent

    @field_validator("cost_usd")
    @classmethod
    def _quantized(cls, value: Decimal) -> Decimal:
        return quantize_usd(value)

    @field_validator("clip_seconds")
    @classmethod
    def _milliseconds(cls, value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.001"))


class SpendTotals(BaseModel):
    key: str
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    clip_seconds: Decimal = Decimal(0)

    @classmethod
    def from_item(cls, key: str, item: dict | None) -> SpendTotals:
        values = from_item(item) if item else {}
        return cls(key=key, **{name: values[name] for name in ("calls", *SUMMED) if name in values})


@dataclasses.dataclass(frozen=True)
class Intent:
    """An attempt under way: the call's estimate and when it was opened."""

    call: ProviderCall
    opened_at: Decimal

    @property
    def key(self) -> dict:
        return intent_key(self.call.job_id, self.call.call_key)

    @property
    def index_key(self) -> dict:
        ms = int(self.opened_at * 1000)
        return _key(INTENT_INDEX_PK, f"{ms:015d}#{self.call.job_id}#{self.call.call_key}")

    def delete_items(self, table: str) -> list[dict]:
        return [{"Delete": {"TableName": table, "Key": key}} for key in (self.key, self.index_key)]


def intent_key(job_id: str, call_key: str) -> dict:
    return _key(f"JOB#{job_id}", f"INTENT#{call_key}")


def _key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _entry(item: dict) -> LedgerEntry:
    return LedgerEntry.model_validate({k: v for k, v in from_item(item).items() if k not in ("pk", "sk")})


def _intent(item: dict) -> Intent:
    values = from_item(item)
    fields = {name: values[name] for name in _CALL_FIELDS if values.get(name) is not None}
    for name in ("input_tokens", "output_tokens", "images", "latency_ms"):
        if name in fields:
            fields[name] = int(fields[name])
    for name in ("clip_seconds", "fps"):
        if name in fields:
            fields[name] = float(fields[name])
    return Intent(ProviderCall(**fields), Decimal(values["opened_at"]))


class Ledger:
    def __init__(self, table: str, client=None, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None):
        self.table = table
        self.ddb = client or aws.client("dynamodb")
        self._now = clock_fn(clock)
        self._sleep = sleep or time.sleep  # backoff after a TransactionConflict

    def record(self, entry: LedgerEntry) -> bool:
        """Write a new entry and add it to every total, touching no budget (the flows record
        through ``DynamoAccounting.record_call``). False if it was already recorded."""
        try:
            self.write(self.entry_items(entry))
            return True
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise

    def now(self) -> float:
        return self._now()

    def write(self, items: list[dict]) -> None:
        """One TransactWriteItems, retried while only a TransactionConflict cancels it."""
        transact(self.ddb, items, self._sleep)

    def stamp(self, entry: LedgerEntry) -> LedgerEntry:
        if entry.created_at is None:
            return entry.model_copy(update={"created_at": datetime.fromtimestamp(self._now(), UTC)})
        return entry

    def entry_items(self, entry: LedgerEntry, previous: LedgerEntry | None = None) -> list[dict]:
        """The transaction items that store ``entry`` and add it to every total, the put first.

        With ``previous`` (the unconfirmed entry it replaces) the put is conditional on
        that entry being unchanged, the totals get the difference and the entry keeps
        the previous one's time (and so its day and month). Without, the put is
        conditional on the entry being new.
        """
        if previous is not None:
            entry = entry.model_copy(update={"created_at": previous.created_at})
        entry = self.stamp(entry)
        at = entry.created_at.astimezone(UTC)
        put = {"Put": {
            "TableName": self.table,
            "Item": {**_key(f"JOB#{entry.job_id}", f"LEDGER#{entry.entry_id}"),
                     **to_item(entry.model_dump(mode="python") | {"created_at": at.isoformat()})},
        }}
        figures = {"calls": 1, **{name: getattr(entry, name) for name in SUMMED}}
        if previous is None:
            put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["Put"] |= {"ConditionExpression": "#confirmed = :false AND #cost = :cost",
                           "ExpressionAttributeNames": {"#confirmed": "confirmed", "#cost": "cost_usd"},
                           "ExpressionAttributeValues": to_item({":false": False, ":cost": previous.cost_usd})}
            figures = {"calls": 0, **{name: getattr(entry, name) - getattr(previous, name) for name in SUMMED}}
        totals = [
            _key(f"JOB#{entry.job_id}", "TOTALS"),
            _key("AGG#day", at.strftime("%Y-%m-%d")),
            _key("AGG#month", at.strftime("%Y-%m")),
            _key("AGG#model", entry.model),
            _key("AGG#provider", entry.provider),
            _key("AGG#total", "all"),
        ]
        return [put, *(self._add(key, figures) for key in totals)]

    def _add(self, key: dict, figures: dict) -> dict:
        return {"Update": {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": "ADD " + ", ".join(f"#{name} :{name}" for name in figures),
            "ExpressionAttributeNames": {f"#{name}": name for name in figures},
            "ExpressionAttributeValues": to_item({f":{name}": value for name, value in figures.items()}),
        }}

    def get(self, job_id: str, call_key: str) -> LedgerEntry | None:
        key = _key(f"JOB#{job_id}", f"LEDGER#{entry_id_for(job_id, call_key)}")
        item = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return _entry(item) if item else None

    def entries(self, job_id: str) -> list[LedgerEntry]:
        items = query_items(
            self.ddb, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":prefix": {"S": "LEDGER#"}},
        )
        return [_entry(item) for item in items]

    # --- intents -------------------------------------------------------------------------

    def open_intent(self, estimate: ProviderCall) -> Intent:
        """Leave the attempt's intent (and its index item). A repeated open keeps the first."""
        intent = Intent(estimate, Decimal(str(round(self._now(), 3))))
        fields = {name: getattr(estimate, name) for name in _CALL_FIELDS}
        items = [
            {"Put": {"TableName": self.table, "Item": {**intent.key, **to_item(fields | {"opened_at": intent.opened_at})},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self.table,
                     "Item": {**intent.index_key, **to_item({"job_id": estimate.job_id,
                                                             "call_key": estimate.call_key})}}},
        ]
        try:
            transact(self.ddb, items, self._sleep)
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return self.intent(estimate.job_id, estimate.call_key) or intent
            raise
        return intent

    def intent(self, job_id: str, call_key: str) -> Intent | None:
        item = self.ddb.get_item(TableName=self.table, Key=intent_key(job_id, call_key),
                                 ConsistentRead=True).get("Item")
        return _intent(item) if item else None

    def close_intent(self, job_id: str, call_key: str) -> bool:
        """Drop an intent whose attempt was not billed. False if there was none."""
        intent = self.intent(job_id, call_key)
        if intent is None:
            return False
        transact(self.ddb, intent.delete_items(self.table), self._sleep)
        return True

    def intents(self, job_id: str) -> list[Intent]:
        items = query_items(
            self.ddb, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":prefix": {"S": "INTENT#"}},
        )
        return [_intent(item) for item in items]

    def stale_intents(self, opened_before: float) -> list[tuple[str, str]]:
        """(job_id, call_key) of every intent opened before ``opened_before``, from one Query."""
        items = query_items(
            self.ddb, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND sk < :before",
            ExpressionAttributeValues={":pk": {"S": INTENT_INDEX_PK},
                                       ":before": {"S": f"{int(opened_before * 1000):015d}"}},
        )
        return [(item["job_id"]["S"], item["call_key"]["S"]) for item in items]

    # --- totals --------------------------------------------------------------------------

    def job_totals(self, job_id: str) -> SpendTotals:
        return self._totals(job_id, _key(f"JOB#{job_id}", "TOTALS"))

    def total(self) -> SpendTotals:
        return self._totals("all", _key("AGG#total", "all"))

    def aggregates(self, by: AggregateBy = "day") -> list[SpendTotals]:
        """Totals per day / month / model / provider, in key order, from one Query."""
        if by not in ("day", "month", "model", "provider"):
            raise ValueError(f"cannot aggregate by {by!r}")
        items = query_items(
            self.ddb, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"AGG#{by}"}},
        )
        return [SpendTotals.from_item(item["sk"]["S"], item) for item in items]

    def _totals(self, key: str, item_key: dict) -> SpendTotals:
        item = self.ddb.get_item(TableName=self.table, Key=item_key, ConsistentRead=True).get("Item")
        return SpendTotals.from_item(key, item)
