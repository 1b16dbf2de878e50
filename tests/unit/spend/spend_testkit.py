"""Test doubles for the spend tests (imported by name; conftest holds the fixtures)."""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from decimal import Decimal

from botocore.exceptions import EndpointConnectionError

from vidpipe.accounting import ProviderCall
from vidpipe.spend.accounting import DynamoAccounting
from vidpipe.spend.budgets import Budgets
from vidpipe.spend.ledger import Ledger
from vidpipe.spend.prices import PriceTable
from vidpipe.spend.ratelimit import RateLimiter

TABLE = "vidpipe-test"
T0 = 1_795_341_600.0  # 2026-11-22T10:00:00Z


class ConflictOnce:
    """A DynamoDB client whose first TransactWriteItems is cancelled by a
    TransactionConflict, as DynamoDB does when two transactions touch one item."""

    def __init__(self, client):
        self._client = client
        self.conflicts = 0

    def transact_write_items(self, **kwargs):
        if self.conflicts == 0:
            self.conflicts += 1
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (len(kwargs["TransactItems"]) - 1)
            raise self._client.exceptions.TransactionCanceledException(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                 "CancellationReasons": reasons}, "TransactWriteItems")
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


class OperationLog:
    """A DynamoDB client that records which operations were called."""

    def __init__(self, client):
        self._client = client
        self.operations: list[str] = []

    def __getattr__(self, name):
        self.operations.append(name)
        return getattr(self._client, name)


class SimulatedTime:
    """Virtual time shared by threads, with no real sleeping.

    Time stands still while any participant runs (so its DynamoDB calls race
    the others' at one instant, and ``now()`` after a call is the instant the
    call was decided), and jumps to the earliest wake-up once every participant
    sleeps: a discrete-event simulation driven by real threads.
    """

    def __init__(self, start: float, participants: int):
        self._now = start
        self._running = participants
        self._sleepers: list[tuple[float, int, list[bool]]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()

    def now(self) -> float:
        with self._cv:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._cv:
            woken = [False]
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), woken))
            self._running -= 1
            self._advance_if_idle()
            self._cv.wait_for(lambda: woken[0])

    def leave(self) -> None:
        with self._cv:
            self._running -= 1
            self._advance_if_idle()

    def _advance_if_idle(self) -> None:
        if self._running or not self._sleepers:
            return
        self._now = max(self._now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2][0] = True
            self._running += 1  # counted as running before it resumes, so time cannot run ahead of it
        self._cv.notify_all()


class RecordingSns:
    def __init__(self, fail_first: bool = False):
        self.messages: list[dict] = []
        self._fail = fail_first

    def publish(self, **kwargs):
        if self._fail:
            self._fail = False
            raise EndpointConnectionError(endpoint_url="https://sns.example")
        self.messages.append(kwargs)
        return {"MessageId": str(len(self.messages))}


def emf_records(text: str, metric: str) -> list[dict]:
    """The EMF records for ``metric`` in captured stdout."""
    records = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            if metric in record:
                records.append(record)
    return records


def gpt_call(job_id: str, call_key: str, usd: str, **fields):
    """A gpt-4.1 call costing exactly ``usd`` (output tokens at $8 per million)."""
    return ProviderCall(job_id=job_id, step="analyze", call_key=call_key, provider="openai", model="gpt-4.1",
                        output_tokens=int(Decimal(usd) * 125_000), **fields)


def accounting_with(client, config, clock, sns=None, sleep=None):
    """A DynamoAccounting over ``config``'s budgets and the packaged price table."""
    return DynamoAccounting(PriceTable.packaged(), Ledger(TABLE, client, clock, sleep),
                            Budgets(TABLE, config, client, clock, sns, sleep),
                            RateLimiter(TABLE, 60, 1_000_000, client, clock, sleep),
                            chat_ttl_s=config.reservation_ttl_s, video_ttl_s=config.reservation_ttl_s)
