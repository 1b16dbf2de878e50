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


# Cancellation reasons that say "not now" rather than "no": another transaction held an
# item (TransactionConflict), or DynamoDB throttled one (on-demand tables throttle too,
# on a hot partition or past the table's previous peak). botocore does not retry a
# cancelled transaction, whatever its reasons.
TRANSIENT_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                                     "RequestLimitExceeded"})
THROTTLE_CANCELLATIONS = TRANSIENT_CANCELLATIONS - {"TransactionConflict"}


def transient_cancellation(exc: ClientError) -> bool:
    """A TransactionCanceledException whose only reasons are transient (conflicts, throttles)."""
    codes = {reason.get("Code") for reason in cancellation_reasons(exc)} - {"None", None}
    return bool(codes) and codes <= TRANSIENT_CANCELLATIONS


def transact(client, items: list[dict], sleep: Callable[[float], None] = time.sleep, attempts: int = 8) -> None:
    """TransactWriteItems, retried with full-jitter backoff while it is cancelled only
    by transient reasons: TransactionConflict (another transaction touching one of
    its items at the same moment: routine on hot budget and aggregate items) and
    throttling (backed off longer: up to 2 s a try). Any other cancellation is the
    caller's to interpret; a transient one that outlives the attempts is raised as
    it is, and the handler edge reports it as AwsTransient (``vidpipe.handback``)."""
    for attempt in range(attempts):
        try:
            client.transact_write_items(TransactItems=items)
            return
        except ClientError as exc:
            if not transient_cancellation(exc) or attempt == attempts - 1:
                raise
            codes = {reason.get("Code") for reason in cancellation_reasons(exc)}
            cap = 2.0 if codes & THROTTLE_CANCELLATIONS else 1.0
            sleep(random.uniform(0, min(cap, 0.025 * 2**attempt)))


def query_items(client, **kwargs) -> Iterator[dict]:
    for page in client.get_paginator("query").paginate(**kwargs):
        yield from page.get("Items", [])
