"""DynamoDB plumbing shared by the spend modules.

Every guarantee in this package is a DynamoDB conditional write or
transaction, because the callers are concurrent Lambdas: nothing in-process
(a lock, a cache) holds across them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from botocore.exceptions import ClientError


class SupportsNow(Protocol):
    def now(self) -> float: ...


Clock = Callable[[], float] | SupportsNow


def clock_fn(clock: Clock | None) -> Callable[[], float]:
    """Accept ``time.time``-like callables and ``vidpipe_local.clock`` objects alike."""
    if clock is None:
        return time.time
    return clock.now if hasattr(clock, "now") else clock


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def cancellation_reasons(exc: ClientError) -> list[dict]:
    """One reason per transaction item, in order ({"Code": "None"} for the ones that passed)."""
    if error_code(exc) != "TransactionCanceledException":
        return []
    return exc.response.get("CancellationReasons", [])


def transact(client, items: list[dict], sleep: Callable[[float], None] = time.sleep, attempts: int = 8) -> None:
    """TransactWriteItems, retried with full-jitter backoff while it is cancelled only
    by TransactionConflict (another transaction touching one of its items at the
    same moment: routine on hot budget and aggregate items, and not retried by
    botocore). Any other cancellation is the caller's to interpret."""
    for attempt in range(attempts):
        try:
            client.transact_write_items(TransactItems=items)
            return
        except ClientError as exc:
            codes = {reason.get("Code") for reason in cancellation_reasons(exc)} - {"None"}
            if codes != {"TransactionConflict"} or attempt == attempts - 1:
                raise
            sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))


def query_items(client, **kwargs) -> Iterator[dict]:
    for page in client.get_paginator("query").paginate(**kwargs):
        yield from page.get("Items", [])
