"""A token bucket per provider, in DynamoDB, shared by every Lambda.

One item per provider holds two buckets, requests and tokens, and the instant
their levels are valid at. ``acquire`` reads it, refills both to now, and books
the call at the first instant both cover it: the item moves to that instant
(possibly in the future) with the call's request and tokens taken, written
conditionally on the version read (a lost race backs off, with full jitter, and
re-reads). The caller then
sleeps (injected) until its slot. Later callers queue behind the booked
instant, so waiters are served in order and no herd re-reads the bucket when a
token drips in. A slot further away than the caller may wait is not booked:
RateLimited(retry_after_s) hands the call back to Step Functions instead of a
Lambda idling. What the caller may wait is ``max_wait_s``, cut to the step's
deadline (``vidpipe.deadline``): a wait must leave the call after it the
deadline's minimum attempt time, so a Lambda near its timeout is handed back
rather than killed in the middle of its wait or of the call.

Sizing. The provider counts requests per 60 s window, and it counts them
when they arrive, which is a little after the slot we booked (the caller
wakes, sends, the request travels). A classic bucket (capacity = limit,
refill = limit per minute) admits up to twice its limit in a minute: a full
burst, then a minute of refill. Here a bucket holds ``C = max(1, burst ×
limit)`` and refills ``(limit + 1 − C) / (60 + margin)`` per second. Then
any ``limit + 1`` consecutive admissions need ``limit + 1 − C`` refills, so
they span at least ``60 + margin`` seconds: no window of 60 s, closed at both
ends, holds more than ``limit`` of them, even when each request reaches the
provider up to ``margin`` seconds after its slot. (Without the margin the
bound is met exactly: at 3 rpm slots 20 s apart put 4 requests in the closed
window [0 s, 60 s], and a little arrival jitter puts a 5th in.) The price is
a sustained rate below the limit: 60 rpm with burst 10 % and a 2 s margin
sustains 53 rpm. Levels round down, waits round up and the clock is read
rounded down, so rounding never admits early. A call larger than the token
capacity could never be admitted and is rejected up front.

    RATE#<provider> / BUCKET    requests, tokens, at (levels valid at), version
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from botocore.exceptions import ClientError

from vidpipe import aws, deadline
from vidpipe.errors import InputRejected, RateLimited
from vidpipe.jobs import from_item, to_item
from vidpipe.spend.ddb import Clock, clock_fn, error_code

WINDOW_S = Decimal(60)  # the provider's rate window
CONFLICT_BACKOFF_BASE_S = 0.05  # a lost race's first backoff is up to 0.1 s, doubling
CONFLICT_BACKOFF_CAP_S = 2.0
_MICRO = Decimal("0.000001")
_MILLI = Decimal("0.001")


@dataclass(frozen=True)
class Bucket:
    capacity: Decimal
    per_second: Decimal

    @classmethod
    def for_limit(cls, per_minute: int, burst: Decimal, margin_s: Decimal = Decimal(2)) -> Bucket:
        if per_minute < 1:
            raise ValueError("a rate limit must be at least 1 per minute")
        if margin_s <= 0:
            raise ValueError("the margin must be positive: without it a closed 60 s window can hold limit + 1")
        capacity = max(1, math.floor(per_minute * burst))
        return cls(Decimal(capacity), Decimal(per_minute + 1 - capacity) / (WINDOW_S + margin_s))

    def refill(self, level: Decimal, elapsed: Decimal) -> Decimal:
        return min(self.capacity, level + elapsed * self.per_second).quantize(_MICRO, rounding=ROUND_FLOOR)

    def wait_for(self, level: Decimal, need: Decimal) -> Decimal:
        """Seconds until ``level`` covers ``need``, rounded up to the millisecond."""
        if level >= need:
            return Decimal(0)
        return ((need - level) / self.per_second).quantize(_MILLI, rounding=ROUND_CEILING)


class RateLimiter:
    def __init__(self, table: str, rpm: int, tpm: int, client=None, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None, burst: Decimal = Decimal("0.1"),
                 margin_s: Decimal = Decimal(2), max_conflicts: int = 50):
        self.table = table
        self.ddb = client or aws.client("dynamodb")
        self.requests = Bucket.for_limit(rpm, burst, margin_s)
        self.tokens = Bucket.for_limit(tpm, burst, margin_s)
        self.limits = f"{rpm} rpm, {tpm} tpm"
        self._now = clock_fn(clock)
        self._sleep = sleep or time.sleep
        self.max_conflicts = max_conflicts

    def acquire(self, provider: str, tokens: int = 0, max_wait_s: float = 30.0) -> float:
        """Take one request and ``tokens`` from the provider's buckets, waiting for
        them if need be; returns the seconds waited (backoff after lost races included). Raises RateLimited when the
        wait would exceed ``max_wait_s`` or the step's deadline's wait budget."""
        need = Decimal(tokens)
        if need > self.tokens.capacity:
            raise InputRejected(f"a call of {tokens} tokens exceeds {provider}'s token bucket of "
                                f"{self.tokens.capacity} ({self.limits}); raise the tpm limit or split the call")
        key = {"pk": {"S": f"RATE#{provider}"}, "sk": {"S": "BUCKET"}}
        conflicts, backed_off = 0, 0.0
        while True:
            may_wait = deadline.current().wait_budget_s(max(0.0, max_wait_s - backed_off))
            item = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            now = Decimal(str(self._now())).quantize(_MICRO, rounding=ROUND_FLOOR)
            stored = from_item(item) if item else {"requests": self.requests.capacity,
                                                   "tokens": self.tokens.capacity, "at": now, "version": 0}
            # The levels hold at stored["at"]: later than now when calls are queued
            # (or when this Lambda's clock lags), and then nothing refills before it.
            start = max(now, stored["at"])
            requests = self.requests.refill(stored["requests"], start - stored["at"])
            token_level = self.tokens.refill(stored["tokens"], start - stored["at"])
            until_slot = max(self.requests.wait_for(requests, Decimal(1)), self.tokens.wait_for(token_level, need))
            wait = start + until_slot - now
            if wait > Decimal(str(may_wait)):
                raise RateLimited(f"rate limit {provider} ({self.limits}): next slot in {float(wait):.3f}s, "
                                  f"more than the {may_wait:.3g}s this call may wait",
                                  retry_after_s=float(wait), provider=provider)
            booked = {"requests": self.requests.refill(requests, until_slot) - 1,
                      "tokens": self.tokens.refill(token_level, until_slot) - need,
                      "at": start + until_slot, "version": stored["version"] + 1}
            if self._commit(key, booked, stored["version"]):
                if wait > 0:
                    self._sleep(float(wait))
                return float(wait) + backed_off
            conflicts += 1
            if conflicts > self.max_conflicts:
                retry = (1 / self.requests.per_second).quantize(_MILLI, rounding=ROUND_CEILING)
                raise RateLimited(f"rate limit {provider}: lost {conflicts} races for the bucket",
                                  retry_after_s=float(retry), provider=provider)
            # Full-jitter backoff before re-reading: callers that lost the race spread out instead of
            # re-reading the item together (a herd that keeps losing, and is billed a read and a
            # write a round). What it sleeps comes out of this call's wait.
            backoff = random.uniform(0, min(CONFLICT_BACKOFF_CAP_S, CONFLICT_BACKOFF_BASE_S * 2**conflicts))
            self._sleep(backoff)
            backed_off += backoff

    def _commit(self, key: dict, state: dict, version: int) -> bool:
        guard = ({"ConditionExpression": "attribute_not_exists(pk)"} if version == 0 else
                 {"ConditionExpression": "version = :seen",
                  "ExpressionAttributeValues": {":seen": {"N": str(version)}}})
        try:
            self.ddb.put_item(TableName=self.table, Item={**key, **to_item(state)}, **guard)
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
