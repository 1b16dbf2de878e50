"""The time a step has left: the Lambda context's remaining time, less a margin.

A handler runs its step ``within(context)``; code deep in the step (an HTTP
retry loop, a rate-limit wait, a download) asks ``current()`` how long it may
still take, so that it stops in time and hands back to Step Functions with a
retryable error instead of being killed at the timeout (``Sandbox.Timedout``,
which the state machines cannot tell from a crash, and which loses the
``retry_after_s`` the step knew).

    remaining_s()   what the context says is left (read live: it keeps falling)
    budget_s()      remaining − margin: when the step must have handed back by
    wait_budget_s() budget − min_attempt_s: the longest a wait before an HTTP
                    attempt may last and still leave that attempt its minimum
    can_attempt()   whether an HTTP attempt is still worth starting

Without a context (unit tests, the CLI) the budget is unbounded.

Time units: the context counts the function's own clock (on AWS, real time).
HTTP and download timeouts are real seconds; ``real_seconds`` converts, which
matters only on the local stack, where a VirtualClock may count one real
second as many (``vidpipe.clock.real_time_scale``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from vidpipe import clock

MARGIN_S = 5.0  # kept back at the end: the step returns or raises, Lambda reports it
MIN_ATTEMPT_S = 10.0  # an HTTP attempt started with less than this left is not worth starting


@dataclass(frozen=True)
class Deadline:
    """``remaining_ms`` reads the time left (a Lambda context's ``get_remaining_time_in_millis``)."""

    remaining_ms: Callable[[], float] | None = None
    margin_s: float = MARGIN_S
    min_attempt_s: float = MIN_ATTEMPT_S

    @classmethod
    def from_context(cls, context: Any, margin_s: float = MARGIN_S,
                     min_attempt_s: float = MIN_ATTEMPT_S) -> Deadline:
        reader = getattr(context, "get_remaining_time_in_millis", None)
        return cls(reader if callable(reader) else None, margin_s, min_attempt_s)

    @property
    def bounded(self) -> bool:
        return self.remaining_ms is not None

    def remaining_s(self) -> float:
        return math.inf if self.remaining_ms is None else max(0.0, self.remaining_ms() / 1000)

    def budget_s(self) -> float:
        """Seconds the step may still use before it must hand back."""
        return max(0.0, self.remaining_s() - self.margin_s)

    def wait_budget_s(self, limit_s: float = math.inf) -> float:
        """The longest wait before an HTTP attempt that leaves the attempt its minimum, at most ``limit_s``."""
        return min(limit_s, max(0.0, self.budget_s() - self.min_attempt_s))

    def can_attempt(self) -> bool:
        return self.budget_s() >= self.min_attempt_s

    def real_seconds(self, clock_seconds: float) -> float:
        """Clock seconds of budget as real seconds (for socket timeouts)."""
        return clock_seconds / clock.real_time_scale()


UNBOUNDED = Deadline()
_current: ContextVar[Deadline] = ContextVar("vidpipe_deadline", default=UNBOUNDED)


def current() -> Deadline:
    """The deadline of the step running on this thread (UNBOUNDED outside ``within``)."""
    return _current.get()


@contextmanager
def within(context: Any, margin_s: float | None = None, min_attempt_s: float | None = None) -> Iterator[Deadline]:
    """Run a step under the context's deadline (the module's MARGIN_S and MIN_ATTEMPT_S unless given)."""
    deadline = Deadline.from_context(context, MARGIN_S if margin_s is None else margin_s,
                                     MIN_ATTEMPT_S if min_attempt_s is None else min_attempt_s)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def retry_after_whole_s(seconds: float | None, default_s: float = 1.0) -> int:
    """Whole seconds to wait (a Wait state's SecondsPath takes an integer), at least 1."""
    value = default_s if seconds is None or not math.isfinite(seconds) else seconds
    return max(1, math.ceil(value))
