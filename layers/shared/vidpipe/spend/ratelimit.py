"""A token bucket per provider, in DynamoDB, shared by every Lambda.

One item per provider holds two buckets, requests and tokens. ``acquire``
reads it, refills both to now, takes one request and the call's tokens, and
writes it back conditionally on the version it read; a lost race re-reads.
When a bucket is short it sleeps (injected) until the refill covers the call,
or raises RateLimited(retry_after_s) if that is longer than the caller may wait,
so Step Functions retries later instead of a Lambda idling.

Sizing. A classic bucket (capacity = limit, refill = limit per minute) admits up
to twice its limit in a minute: a full burst, then a minute of refill. Here a
bucket holds ``C = max(1, burst × limit)`` and refills ``(limit + 1 − C) / 60``
per second, so in any window [t, t + 60 s) it admits at most ``C + 60·rate −
ε ≤ limit`` requests (or tokens): the provider's per-minute limit holds for
any minute, at the price of a sustained rate slightly below it. A call larger
than the token capacity could never be admitted and is rejected up front.

    RATE#<provider> / BUCKET    requests, tokens, updated_at, version
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from botocore.exceptions import ClientError

from vidpipe import aws
from vidpipe.errors import InputRejected, RateLimited
from vidpipe.jobs import from_item, to_item
from vidpipe.spend.ddb import Clock, clock_fn, error_code

_MICRO = Decimal("0.000001")
_MILLI = Decimal("0.001")


@dataclass(frozen=True)
class Bucket:
    capacity: Decimal
    per_second: Decimal

    @classmethod
    def for_limit(cls, per_minute: int, burst: Decimal) -> Bucket:
        if per_minute < 1:
            raise ValueError("a rate limit must be at least 1 per minute")
        capacity = max(1, math.floor(per_minute * burst))
        return cls(Decimal(capacity), Decimal(per_minute + 1 - capacity) / 60)

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
                 max_conflicts: int = 50):
        self.table = table
        self.ddb = client or aws.client("dynamodb")
        self.requests = Bucket.for_limit(rpm, burst)
        self.tokens = Bucket.for_limit(tpm, burst)
        self.limits = f"{rpm} rpm, {tpm} tpm"
        self._now = clock_fn(clock)
        self._sleep = sleep or time.sleep
        self.max_conflicts = max_conflicts

    def acquire(self, provider: str, tokens: int = 0, max_wait_s: float = 30.0) -> float:
        """Take one request and ``tokens`` from the provider's buckets; returns the
        seconds waited. Raises RateLimited when the wait would exceed ``max_wait_s``."""
        need = Decimal(tokens)
        if need > self.tokens.capacity:
            raise InputRejected(f"a call of {tokens} tokens exceeds {provider}'s token bucket of "
                                f"{self.tokens.capacity} ({self.limits}); raise the tpm limit or split the call")
        key = {"pk": {"S": f"RATE#{provider}"}, "sk": {"S": "BUCKET"}}
        waited, conflicts = 0.0, 0
        while True:
            item = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            now = Decimal(str(self._now())).quantize(_MICRO)
            stored = from_item(item) if item else {"requests": self.requests.capacity,
                                                   "tokens": self.tokens.capacity, "updated_at": now, "version": 0}
            # Lambdas' clocks differ a little: never refill for time already counted.
            elapsed = max(Decimal(0), now - stored["updated_at"])
            requests = self.requests.refill(stored["requests"], elapsed)
            token_level = self.tokens.refill(stored["tokens"], elapsed)
            wait = max(self.requests.wait_for(requests, Decimal(1)), self.tokens.wait_for(token_level, need))
            if wait == 0:
                state = {"requests": requests - 1, "tokens": token_level - need,
                         "updated_at": max(now, stored["updated_at"]), "version": stored["version"] + 1}
                if self._commit(key, state, stored["version"]):
                    return waited
                conflicts += 1
                if conflicts > self.max_conflicts:
                    wait = (1 / self.requests.per_second).quantize(_MILLI, rounding=ROUND_CEILING)
                    raise RateLimited(f"rate limit {provider}: lost {conflicts} races for the bucket",
                                      retry_after_s=float(wait), provider=provider)
                continue
            if waited + float(wait) > max_wait_s:
                raise RateLimited(f"rate limit {provider} ({self.limits}): next slot in {wait}s, "
                                  f"more than the {max_wait_s:g}s this call may wait",
                                  retry_after_s=float(wait), provider=provider)
            self._sleep(float(wait))
            waited += float(wait)

    def _commit(self, key: dict, state: dict, version: int) -> bool:
        guard = ({"ConditionExpression": "attribute_not_exists(pk)"} if version == 0 else
                 {"ConditionExpression": "version = :seen", "ExpressionAttributeValues": {":seen": {"N": str(version)}}})
        try:
            self.ddb.put_item(TableName=self.table, Item={**key, **to_item(state)}, **guard)
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
