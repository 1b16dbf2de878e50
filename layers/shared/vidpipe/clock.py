"""The time source of the Lambda code: wall-clock time when deployed.

The local stack swaps in its own clock (scaled or virtual) so that provider
ETAs, Step Functions Wait states, deadlines and rate-limit refills all agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_now: Callable[[], float] = time.time
_sleep: Callable[[float], None] = time.sleep
_real_time_scale: float = 1.0  # clock seconds per real second of waiting on a socket


def now() -> float:
    return _now()


def sleep(seconds: float) -> None:
    _sleep(seconds)


def real_time_scale() -> float:
    """How many clock seconds one real second counts for (1 when deployed; the local
    stack's VirtualClock may count more). Socket timeouts are real seconds."""
    return _real_time_scale


def use(now_fn: Callable[[], float], sleep_fn: Callable[[float], None], real_time_scale: float = 1.0) -> None:
    global _now, _sleep, _real_time_scale
    _now, _sleep, _real_time_scale = now_fn, sleep_fn, real_time_scale


def reset() -> None:
    use(time.time, time.sleep)
