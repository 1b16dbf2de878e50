"""Budget reservations that hold across every concurrent Lambda.

A reservation is ONE TransactWriteItems: a conditional update of every scope
it must fit (see ``scopes.py``), the reservation item and its entry in the
expiry index, all or nothing.

DynamoDB condition expressions cannot add, so ``spent + reserved + amount <=
limit`` cannot be written as a condition. Each scope item therefore keeps
``headroom = limit - spent - reserved`` up to date in the same updates that
move ``spent`` and ``reserved``, and the condition is ``headroom >= :amount``.
A scope item is created by the first reservation of its period
(``if_not_exists``), so no one has to provision the day's budget.

Items (single table, keys pk/sk):

    BUDGET#<scope>     / <period>         limit, spent, reserved, headroom[, alarmed_at]
    RESERVATION#<id>   / RESERVATION      job_id, model, amount, scopes, state,
                                          created_at, expires_at[, actual_cost, settled_at |
                                          released_at, ttl (30 days after it left LIVE)]
    RESERVATIONS#LIVE  / <expires_ms>#<id>  index of live reservations, by expiry

A reservation moves LIVE → SETTLED (reconcile) or LIVE → RELEASED (release,
sweep), each move a transaction conditional on the state it read, so it
happens exactly once. A reservation the sweep released may still be
reconciled: the money was spent, so it is added to ``spent`` (RELEASED →
SETTLED) rather than lost. The index item lets the sweep find expired
reservations with one Query instead of a Scan; it is written and deleted in
the same transactions as the reservation, so it is never stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum

from botocore.exceptions import ClientError
from pydantic import BaseModel

from vidpipe import aws
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded
from vidpipe.jobs import from_item, stable_id, to_item
from vidpipe.observability import logger
from vidpipe.spend.alarms import BudgetAlarm
from vidpipe.spend.ddb import Clock, cancellation_reasons, clock_fn, query_items, transact
from vidpipe.spend.prices import quantize_usd
from vidpipe.spend.scopes import BudgetConfig, Scope, ScopeRef

LIVE_INDEX_PK = "RESERVATIONS#LIVE"
SETTLED_RETENTION_S = 30 * 24 * 3600  # then the table's TTL (attribute ``ttl``) deletes the record
_NAMES = {"#limit": "limit", "#spent": "spent", "#reserved": "reserved", "#headroom": "headroom"}


class ReservationState(StrEnum):
    LIVE = "LIVE"
    SETTLED = "SETTLED"
    RELEASED = "RELEASED"


class Reservation(BaseModel):
    reservation_id: str
    job_id: str
    model: str
    amount: Decimal
    scopes: list[ScopeRef]
    state: ReservationState
    created_at: Decimal
    expires_at: Decimal
    actual_cost: Decimal | None = None

    @property
    def key(self) -> dict:
        return reservation_key(self.reservation_id)

    @property
    def index_key(self) -> dict:
        return {"pk": {"S": LIVE_INDEX_PK}, "sk": {"S": f"{_millis(self.expires_at):015d}#{self.reservation_id}"}}


def reservation_key(reservation_id: str) -> dict:
    return {"pk": {"S": f"RESERVATION#{reservation_id}"}, "sk": {"S": "RESERVATION"}}


def _seconds(epoch: float) -> Decimal:
    return Decimal(str(round(epoch, 3)))


def _millis(seconds: float | Decimal) -> int:
    return int(Decimal(str(seconds)) * 1000)


def _usd(amount: Decimal) -> str:
    """Cents when exact ("9.80"), every digit otherwise ("0.00012")."""
    cents = amount.quantize(Decimal("0.01"))
    return f"{cents:f}" if cents == amount else f"{amount.normalize():f}"


class Budgets:
    def __init__(self, table: str, config: BudgetConfig | Settings, client=None, clock: Clock | None = None,
                 sns=None, sleep: Callable[[float], None] | None = None):
        self.table = table
        self.config = config if isinstance(config, BudgetConfig) else BudgetConfig.from_settings(config)
        self.ddb = client or aws.client("dynamodb")
        self._now = clock_fn(clock)
        self._sleep = sleep or time.sleep
        self.alarm = BudgetAlarm(table, self.ddb, self.config.alarm_topic_arn, sns, self.config.alarm_ratio, clock)

    def reserve(self, job_id: str, amount: Decimal, model: str, job_limit: Decimal | None = None,
                reservation_id: str | None = None, ttl_s: int | None = None) -> Reservation:
        """Reserve ``amount`` in every scope, or raise BudgetExceeded naming the scopes.

        Idempotent per ``reservation_id`` (default: one per job and model): a retried
        call returns the reservation already made. ``ttl_s`` (default
        Settings.reservation_ttl_s) must outlast the work; the sweep releases it after.
        """
        amount = quantize_usd(Decimal(amount))
        if amount < 0:
            raise ValueError("a reservation must not be negative")
        now = self._now()
        scopes = self.config.scopes(now, model, job_id, job_limit)
        too_big = [scope for scope in scopes if amount > scope.limit]
        if too_big:  # no headroom could fit it; a new scope item would start below zero
            raise self._refusal([(s.ref, self._read(s.ref) | {"limit": s.limit}) for s in too_big], amount)

        reservation = Reservation(
            reservation_id=reservation_id or stable_id("rsv", job_id, model), job_id=job_id, model=model,
            amount=amount, scopes=[scope.ref for scope in scopes], state=ReservationState.LIVE,
            created_at=_seconds(now), expires_at=_seconds(now + (ttl_s or self.config.reservation_ttl_s)),
        )
        items = [self._take(scope, amount) for scope in scopes] + [
            self._put_new({**reservation.key, **to_item(reservation.model_dump())}),
            self._put_new({**reservation.index_key, **to_item({"reservation_id": reservation.reservation_id})}),
        ]
        try:
            transact(self.ddb, items, self._sleep)
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if not reasons:
                raise
            if reasons[len(scopes)].get("Code") == "ConditionalCheckFailed":
                return self.get(reservation.reservation_id)
            refused = self._refused(scopes, reasons)
            if refused:
                raise self._refusal(refused, amount) from None
            raise
        self.alarm.observe(reservation.scopes)
        return reservation

    def reconcile(self, reservation_id: str, actual_cost: Decimal) -> bool:
        """Replace the reservation by what was actually spent. False if already settled."""
        actual = quantize_usd(Decimal(actual_cost))
        if actual < 0:
            raise ValueError("a cost must not be negative")
        # Each failed move means another writer advanced the state (LIVE → RELEASED
        # → SETTLED only moves forward), so this loop ends within three rounds.
        while True:
            reservation = self._require(reservation_id)
            if reservation.state is ReservationState.SETTLED:
                return False
            if reservation.state is ReservationState.LIVE:
                figures = {"#spent": actual, "#reserved": -reservation.amount,
                           "#headroom": reservation.amount - actual}
            else:
                figures = {"#spent": actual, "#headroom": -actual}
            extra = {"actual_cost": actual, "settled_at": _seconds(self._now())}
            if self._move(reservation, ReservationState.SETTLED, figures, extra):
                self.alarm.observe(reservation.scopes)
                return True

    def release(self, reservation_id: str) -> bool:
        """Give the reserved amount back. False if it was already settled or released
        (or never made: a failure path may release what it did not get)."""
        reservation = self.get(reservation_id)
        if reservation is None or reservation.state is not ReservationState.LIVE:
            return False
        figures = {"#reserved": -reservation.amount, "#headroom": reservation.amount}
        return self._move(reservation, ReservationState.RELEASED, figures, {"released_at": _seconds(self._now())})

    def sweep_expired(self, now: float | None = None) -> int:
        """Release every live reservation past its expiry (its holder died). Returns how
        many this call released; concurrent sweeps release each one once in total."""
        now = self._now() if now is None else now
        expired = query_items(
            self.ddb, TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND sk < :now",
            ExpressionAttributeValues={":pk": {"S": LIVE_INDEX_PK}, ":now": {"S": f"{_millis(now):015d}"}},
        )
        released = 0
        for item in expired:
            reservation_id = item["reservation_id"]["S"]
            if self.release(reservation_id):
                logger.warning("released an expired reservation", extra={"reservation_id": reservation_id})
                released += 1
        return released

    def get(self, reservation_id: str) -> Reservation | None:
        item = self.ddb.get_item(TableName=self.table, Key=reservation_key(reservation_id),
                                 ConsistentRead=True).get("Item")
        return Reservation.model_validate(from_item(item)) if item else None

    def scope_state(self, ref: ScopeRef) -> dict:
        """limit / spent / reserved / headroom of one scope (zeros before its first reservation)."""
        return self._read(ref)

    def _require(self, reservation_id: str) -> Reservation:
        reservation = self.get(reservation_id)
        if reservation is None:
            raise KeyError(f"no reservation {reservation_id!r}")
        return reservation

    def _take(self, scope: Scope, amount: Decimal) -> dict:
        return {"Update": {
            "TableName": self.table, "Key": scope.ref.key,
            "UpdateExpression": "SET #limit = if_not_exists(#limit, :limit), "
                                "#headroom = if_not_exists(#headroom, :limit) - :amount "
                                "ADD #reserved :amount, #spent :zero",
            "ConditionExpression": "attribute_not_exists(#headroom) OR #headroom >= :amount",
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": to_item({":limit": scope.limit, ":amount": amount, ":zero": 0}),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def _refused(self, scopes: list[Scope], reasons: list[dict]) -> list[tuple[ScopeRef, dict]]:
        """The scopes whose condition failed, each with its state when it failed."""
        return [(scope.ref, from_item(reason["Item"]) if "Item" in reason else self._read(scope.ref))
                for scope, reason in zip(scopes, reasons[:len(scopes)], strict=True)
                if reason.get("Code") == "ConditionalCheckFailed"]

    def _put_new(self, item: dict) -> dict:
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def _move(self, reservation: Reservation, to: ReservationState, figures: dict, extra: dict) -> bool:
        """Apply ``figures`` (ADDs) to every scope and move the state, iff it is still
        the state we read. False when another writer moved it first."""
        adds = [{"Update": {
            "TableName": self.table, "Key": ref.key,
            "UpdateExpression": "ADD " + ", ".join(f"{name} :v{i}" for i, name in enumerate(figures)),
            "ExpressionAttributeNames": {name: _NAMES[name] for name in figures},
            "ExpressionAttributeValues": to_item({f":v{i}": value for i, value in enumerate(figures.values())}),
        }} for ref in reservation.scopes]
        fields = {"state": str(to), "ttl": int(self._now()) + SETTLED_RETENTION_S, **extra}
        move = {"Update": {
            "TableName": self.table, "Key": reservation.key,
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            "ConditionExpression": "#f0 = :from",
            "ExpressionAttributeNames": {f"#f{i}": name for i, name in enumerate(fields)},
            "ExpressionAttributeValues": to_item({":from": str(reservation.state),
                                                  **{f":f{i}": v for i, v in enumerate(fields.values())}}),
        }}
        items = [*adds, move]
        if reservation.state is ReservationState.LIVE:
            items.append({"Delete": {"TableName": self.table, "Key": reservation.index_key}})
        try:
            transact(self.ddb, items, self._sleep)
            return True
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if len(reasons) > len(adds) and reasons[len(adds)].get("Code") == "ConditionalCheckFailed":
                return False
            raise

    def _read(self, ref: ScopeRef) -> dict:
        item = self.ddb.get_item(TableName=self.table, Key=ref.key, ConsistentRead=True).get("Item")
        values = from_item(item) if item else {}
        return {name: values.get(name, Decimal(0)) for name in ("limit", "spent", "reserved", "headroom")}

    @staticmethod
    def _refusal(refused: list[tuple[ScopeRef, dict]], amount: Decimal) -> BudgetExceeded:
        parts = [f"budget {ref.label}: {_usd(state['spent'])} spent + {_usd(state['reserved'])} reserved + "
                 f"{_usd(amount)} requested > {_usd(state['limit'])} limit" for ref, state in refused]
        return BudgetExceeded("; ".join(parts), scopes=[ref.label for ref, _ in refused], requested=str(amount))
