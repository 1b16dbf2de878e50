"""The time source of the Lambda code: wall-clock time when deployed.

The local stack swaps in its own clock (scaled or virtual) so that provider
ETAs, Step Functions Wait states, deadlines and rate-limit refills all agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_now: Callable[[], float] = time.time
_sleep: Callable[[float], None] = time.sleep


def now() -> float:
    return _now()


def sleep(seconds: float) -> None:
    _sleep(seconds)


def use(now_fn: Callable[[], float], sleep_fn: Callable[[float], None]) -> None:
    global _now, _sleep
    _now, _sleep = now_fn, sleep_fn


def reset() -> None:
    use(time.time, time.sleep)
