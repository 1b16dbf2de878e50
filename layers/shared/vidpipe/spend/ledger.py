"""The spend ledger: one entry per provider call, and totals that are sums of them.

``Ledger.record`` is a single TransactWriteItems: the entry is put only if its
id is new, and the same transaction ADDs the call's figures to the job totals
and to every aggregate. A retried write of the same call is cancelled by the
entry's condition, so it counts once everywhere or nowhere.

Items (single table, keys pk/sk):

    JOB#<job_id>   / LEDGER#<entry_id>   the entry
    JOB#<job_id>   / TOTALS              job totals
    AGG#day        / <YYYY-MM-DD>        totals per UTC day
    AGG#month      / <YYYY-MM>           totals per UTC month
    AGG#model      / <model>             totals per model
    AGG#provider   / <provider>          totals per provider
    AGG#total      / all                 grand total

Totals items hold ``calls, cost_usd, input_tokens, output_tokens, images,
clip_seconds``. Aggregates of one kind share a partition, so one Query lists
them (no Scan); the cost is one hot partition per kind, fine at the write rates
of a budgeted fleet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vidpipe import aws
from vidpipe.jobs import from_item, stable_id, to_item
from vidpipe.spend.ddb import Clock, cancellation_reasons, clock_fn, query_items, transact
from vidpipe.spend.prices import quantize_usd

AggregateBy = Literal["day", "month", "model", "provider"]
SUMMED = ("cost_usd", "input_tokens", "output_tokens", "images", "clip_seconds")


def entry_id_for(job_id: str, step: str, call_key: str) -> str:
    """A deterministic entry id, so a retried write of one call lands on the same item.

    ``call_key`` names one paid provider call: prefer the provider's response
    id. A step's own counter ("chunk-3") also dedupes a retried Lambda, but then
    a retry that really called the provider again is not counted a second time.
    """
    return stable_id("le", job_id, step, call_key)


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    job_id: str
    step: str
    provider: str
    model: str
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


def _key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class Ledger:
    def __init__(self, table: str, client=None, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None):
        self.table = table
        self.ddb = client or aws.client("dynamodb")
        self._now = clock_fn(clock)
        self._sleep = sleep or time.sleep  # backoff after a TransactionConflict

    def record(self, entry: LedgerEntry) -> bool:
        """Write the entry and add it to every total. False if it was already recorded."""
        if entry.created_at is None:
            entry = entry.model_copy(update={"created_at": datetime.fromtimestamp(self._now(), UTC)})
        at = entry.created_at.astimezone(UTC)
        put = {"Put": {
            "TableName": self.table,
            "Item": {**_key(f"JOB#{entry.job_id}", f"LEDGER#{entry.entry_id}"),
                     **to_item(entry.model_dump(mode="python") | {"created_at": at.isoformat()})},
            "ConditionExpression": "attribute_not_exists(pk)",
        }}
        totals = [
            _key(f"JOB#{entry.job_id}", "TOTALS"),
            _key("AGG#day", at.strftime("%Y-%m-%d")),
            _key("AGG#month", at.strftime("%Y-%m")),
            _key("AGG#model", entry.model),
            _key("AGG#provider", entry.provider),
            _key("AGG#total", "all"),
        ]
        try:
            transact(self.ddb, [put, *(self._add(key, entry) for key in totals)], self._sleep)
            return True
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise

    def _add(self, key: dict, entry: LedgerEntry) -> dict:
        figures = {"calls": 1, **{name: getattr(entry, name) for name in SUMMED}}
        return {"Update": {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": "ADD " + ", ".join(f"#{name} :{name}" for name in figures),
            "ExpressionAttributeNames": {f"#{name}": name for name in figures},
            "ExpressionAttributeValues": to_item({f":{name}": value for name, value in figures.items()}),
        }}

    def entries(self, job_id: str) -> list[LedgerEntry]:
        items = query_items(
            self.ddb, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":prefix": {"S": "LEDGER#"}},
        )
        return [LedgerEntry.model_validate({k: v for k, v in from_item(item).items() if k not in ("pk", "sk")})
                for item in items]

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
