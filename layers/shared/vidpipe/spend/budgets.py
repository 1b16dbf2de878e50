"""Budget reservations that hold across every concurrent Lambda.

A reservation is ONE TransactWriteItems: a conditional update of every scope
it must fit (see ``scopes.py``), the reservation item and its entry in the
expiry index, all or nothing.

DynamoDB condition expressions cannot add, so ``spent + reserved + amount <=
limit`` cannot be written as a condition. Each scope item therefore keeps
``headroom = limit - spent - reserved`` up to date in the same updates that
move ``spent`` and ``reserved``, and the condition is ``headroom >= :amount``.
A scope item is created by the first reservation or charge of its period
(``if_not_exists``), so no one has to provision the day's budget.

Money a call spends reaches ``spent`` when its ledger entry is written, in
the same transaction (``charge_items``, used by ``DynamoAccounting.record_call``):
the cost is added to ``spent`` of the job's scopes and, while the job's
reservation is LIVE, what is left of it is consumed (``reserved`` goes down by
min(cost, amount - consumed), the reservation's ``consumed`` up by as much,
conditional on the ``consumed`` that was read). So ``spent`` equals the ledger
by construction, and settling or releasing a reservation only hands back its
unconsumed remainder: never money the ledger shows as spent.

Items (single table, keys pk/sk):

    BUDGET#<scope>     / <period>         limit, spent, reserved, headroom[, alarmed_at]
    RESERVATION#<id>   / RESERVATION      job_id, model, amount, consumed, scopes, state,
                                          created_at, expires_at[, settled_at |
                                          released_at, ttl (30 days after it left LIVE)]
    RESERVATIONS#LIVE  / <expires_ms>#<id>  index of live reservations, by expiry

A reservation moves LIVE → SETTLED (settle) or LIVE → RELEASED (release,
sweep), each move a transaction conditional on the state and ``consumed`` it
read, so it happens exactly once and never races a call's consumption. A call
recorded after the move adds to ``spent`` of the scopes (the current day's and
month's) without touching the reservation. The index item lets the sweep find
expired reservations with one Query instead of a Scan; it is written and
deleted in the same transactions as the reservation, so it is never stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum

from botocore.exceptions import ClientError
from pydantic import BaseModel

from vidpipe import aws
from vidpipe.accounting import reservation_id_for
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded
from vidpipe.jobs import from_item, to_item
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
    consumed: Decimal = Decimal(0)  # what recorded calls took of ``amount``
    actual_cost: Decimal | None = None  # the job's ledger total when settled (for reading only)

    @property
    def remainder(self) -> Decimal:
        return self.amount - self.consumed

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

        Idempotent per ``reservation_id`` (default: ``reservation_id_for(job_id)``, the
        job's one reservation): a retried call returns the reservation already made. ``ttl_s`` (default
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
            reservation_id=reservation_id or reservation_id_for(job_id), job_id=job_id, model=model,
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

    def reserve_from(self, parent_id: str, job_id: str, amount: Decimal, model: str,
                     reservation_id: str | None = None, ttl_s: int | None = None) -> Reservation:
        """Move ``amount`` out of the LIVE reservation ``parent_id`` (a production's) into the
        job's own reservation, in ONE transaction: the parent's ``consumed`` goes up by it
        (conditional on the state and ``consumed`` read), the new reservation (same scopes,
        same period) and its index entry are created. No scope changes: the money stays
        reserved, now held by the job, whose calls consume it and whose settle hands back
        its remainder. Idempotent per ``reservation_id``. BudgetExceeded when the parent is
        not LIVE or has less than ``amount`` left."""
        amount = quantize_usd(Decimal(amount))
        reservation_id = reservation_id or reservation_id_for(job_id)
        for _ in range(50):
            existing = self.get(reservation_id)
            if existing is not None:
                return existing
            parent = self.get(parent_id)
            if parent is None or parent.state is not ReservationState.LIVE:
                state = "missing" if parent is None else str(parent.state)
                raise BudgetExceeded(f"the production reservation {parent_id} is {state}: nothing to take "
                                     f"{_usd(amount)} USD from", requested=str(amount))
            if parent.remainder < amount:
                raise BudgetExceeded(f"the production reservation {parent_id} has {_usd(parent.remainder)} USD "
                                     f"left < {_usd(amount)} USD requested", requested=str(amount))
            now = self._now()
            child = Reservation(reservation_id=reservation_id, job_id=job_id, model=model, amount=amount,
                                scopes=parent.scopes, state=ReservationState.LIVE, created_at=parent.created_at,
                                expires_at=_seconds(now + (ttl_s or self.config.reservation_ttl_s)))
            old = parent.consumed
            take = {"Update": {
                "TableName": self.table, "Key": parent.key,
                "UpdateExpression": "SET #consumed = :new",
                "ConditionExpression": "#state = :live AND " + (
                    "(attribute_not_exists(#consumed) OR #consumed = :old)" if old == 0 else "#consumed = :old"),
                "ExpressionAttributeNames": {"#state": "state", "#consumed": "consumed"},
                "ExpressionAttributeValues": to_item({":live": str(ReservationState.LIVE), ":old": old,
                                                      ":new": old + amount}),
            }}
            items = [take, self._put_new({**child.key, **to_item(child.model_dump())}),
                     self._put_new({**child.index_key, **to_item({"reservation_id": reservation_id})})]
            try:
                transact(self.ddb, items, self._sleep)
                return child
            except ClientError as exc:
                if not cancellation_reasons(exc):
                    raise
                continue  # another shot moved money (or this one was made) meanwhile: read again
        raise RuntimeError(f"reservation {reservation_id} lost 50 races for {parent_id}")

    def charge_items(self, job_id: str, model: str, cost: Decimal, reservation: Reservation | None
                     ) -> tuple[list[dict], list[ScopeRef], bool]:
        """Transaction items that add ``cost`` to ``spent`` of the call's scopes and, while
        ``reservation`` (as read) is LIVE, consume what is left of it. ``cost`` may be
        negative: an estimate replaced by the provider's smaller figure.

        The call's scopes: while the reservation is LIVE, the periods it was made in
        (``spent`` lands where ``reserved`` was held); otherwise the current ones. The
        global day and month, the call model's daily scope if it has a limit, and the
        job's own scope when the reservation has one. The reservation item's update is
        conditional on its state and ``consumed`` as read: a caller that loses a race
        reads again (see ``is_stale``). Returns (items, scopes touched, whether any
        utilisation rose).
        """
        cost = quantize_usd(Decimal(cost))
        live = reservation is not None and reservation.state is ReservationState.LIVE
        at = float(reservation.created_at) if live else self._now()
        scopes = self.config.scopes(at, model, job_id, None)
        limits: dict[ScopeRef, Decimal | None] = {scope.ref: scope.limit for scope in scopes}
        if reservation is not None:
            # The scopes a LIVE reservation took exist since it was made: their update names no
            # ``limit``, so the functions that record calls need no right to write one (template.yaml).
            held = reservation.scopes if live else [ref for ref in reservation.scopes if ref.is_job]
            limits |= {ref: None for ref in held if ref in limits or ref.is_job}
        spent = dict.fromkeys(limits, cost)
        consume = min(max(cost, Decimal(0)), reservation.remainder) if live else Decimal(0)
        released = {ref: -consume for ref in reservation.scopes} if consume else {}
        for ref in released:
            limits.setdefault(ref, None)
        items = [self._charge(ref, limit, spent.get(ref, Decimal(0)), released.get(ref, Decimal(0)))
                 for ref, limit in limits.items()]
        if consume:
            old = reservation.consumed
            condition = "#state = :live AND " + (
                "(attribute_not_exists(#consumed) OR #consumed = :old)" if old == 0 else "#consumed = :old")
            items.append({"Update": {
                "TableName": self.table, "Key": reservation.key,
                "UpdateExpression": "SET #consumed = :new",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#state": "state", "#consumed": "consumed"},
                "ExpressionAttributeValues": to_item({":live": str(ReservationState.LIVE), ":old": old,
                                                      ":new": old + consume}),
            }})
        return items, list(limits), cost > consume

    def _charge(self, ref: ScopeRef, limit: Decimal | None, spent: Decimal, reserved: Decimal) -> dict:
        """One scope's update: ADD spent and reserved, headroom down by their sum. A scope
        first seen here (a call without a reservation, on a new day) is created at its limit."""
        values = {":spent": spent, ":reserved": reserved, ":used": spent + reserved}
        if limit is None:  # a reservation's job scope: its item exists since the reservation
            head = "#headroom = #headroom - :used"
        else:
            head = "#limit = if_not_exists(#limit, :limit), #headroom = if_not_exists(#headroom, :limit) - :used"
            values[":limit"] = limit
        return {"Update": {
            "TableName": self.table, "Key": ref.key,
            "UpdateExpression": f"SET {head} ADD #spent :spent, #reserved :reserved",
            "ExpressionAttributeNames": {name: _NAMES[name] for name in ("#headroom", "#spent", "#reserved")}
            | ({"#limit": "limit"} if limit is not None else {}),
            "ExpressionAttributeValues": to_item(values),
        }}

    @staticmethod
    def is_stale(reasons: list[dict], items: list[dict]) -> bool:
        """Whether a cancelled charge lost the race for its reservation (read it again)."""
        return any(r.get("Code") == "ConditionalCheckFailed" and "RESERVATION#" in item.get("Update", {})
                   .get("Key", {}).get("pk", {}).get("S", "") for r, item in zip(reasons, items))

    def settle(self, reservation_id: str, actual_cost: Decimal | None = None) -> bool:
        """LIVE → SETTLED, giving back the unconsumed remainder. False if it had already left
        LIVE (or was never made). ``actual_cost`` (the job's ledger total) is kept for reading."""
        extra = {"settled_at": _seconds(self._now())}
        if actual_cost is not None:
            extra["actual_cost"] = quantize_usd(Decimal(actual_cost))
        return self._finish(reservation_id, ReservationState.SETTLED, extra)

    def release(self, reservation_id: str) -> bool:
        """LIVE → RELEASED, giving back the unconsumed remainder. False if it had already left
        LIVE (or was never made: a failure path may release what it did not get)."""
        return self._finish(reservation_id, ReservationState.RELEASED, {"released_at": _seconds(self._now())})

    def _finish(self, reservation_id: str, to: ReservationState, extra: dict) -> bool:
        # A failed move means a call consumed some of it meanwhile (read again) or another
        # writer moved it out of LIVE (then the next read returns False).
        while True:
            reservation = self.get(reservation_id)
            if reservation is None or reservation.state is not ReservationState.LIVE:
                return False
            rest = reservation.remainder
            if self._move(reservation, to, {"#reserved": -rest, "#headroom": rest}, extra):
                self.alarm.observe(reservation.scopes)
                return True

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
        """Apply ``figures`` (ADDs) to every scope and move the state, iff the state and
        ``consumed`` are still what we read. False when another writer changed them first."""
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
            "ConditionExpression": "#f0 = :from AND " + (
                "(attribute_not_exists(#consumed) OR #consumed = :consumed)" if reservation.consumed == 0
                else "#consumed = :consumed"),
            "ExpressionAttributeNames": {f"#f{i}": name for i, name in enumerate(fields)} | {"#consumed": "consumed"},
            "ExpressionAttributeValues": to_item({":from": str(reservation.state), ":consumed": reservation.consumed,
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
