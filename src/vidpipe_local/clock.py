"""One clock for everything that waits locally: the provider emulator's jobs,
Step Functions Wait states, the local SQS pollers and Lambda timeouts.

- ``ScaledClock(scale)``: real time, sped up. ``sleep(s)`` sleeps s/scale real
  seconds and ``now()`` advances ``scale`` seconds per real second, so a
  provider ETA and a Wait state shrink together (the CLI and demo).
- ``VirtualClock``: nothing sleeps; ``sleep(s)`` advances the clock by s. Tests
  use it so a 15-minute generation job runs in milliseconds, deterministically.

Time used by one Lambda invocation is measured with ``clock.stopwatch()``:
the seconds its own thread slept on the clock (at their clock value), plus the
rest of its real time × ``real_time_scale`` (1.0 by default), on either clock.

- Only the invocation's own sleeps count, because concurrent handlers share one
  clock: ten chunk Lambdas each waiting 20 s advance a VirtualClock by 200 s,
  but on AWS they wait side by side and each has used 20 s.
- Real time counts one for one, not × the ScaledClock's scale: CPU work and
  real waits (an emulator ``latency`` or ``timeout`` fault holds real seconds)
  are not sped up locally, so scaling them would time out a handler that has
  the same margin as on AWS. A test that wants a short real hang to use a long
  budget raises ``real_time_scale`` (VirtualClock(real_time_scale=200): 0.3 s
  real is 60 s).

A whole execution (its TimeoutSeconds) is timed with ``execution_stopwatch``:
the shared clock's time (Wait states and Retry intervals advance it), plus, on
a VirtualClock, real time × ``real_time_scale``.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from collections.abc import Iterator


class Clock:
    real_time_scale: float = 1.0  # clock seconds one real second of work is worth (stopwatches)

    def now(self) -> float:  # seconds, provider time
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def stopwatch(self) -> Stopwatch:
        return _ThreadStopwatch(self)


class Stopwatch:
    """Clock seconds used since it started (see the module docstring)."""

    def elapsed(self) -> float:
        raise NotImplementedError


# The stopwatch clock sleeps are charged to: a context variable, so that threads a handler starts
# with its context (contextvars.copy_context) are charged to its invocation too.
_charged: ContextVar[Stopwatch | None] = ContextVar("vidpipe_local_charged", default=None)


@contextmanager
def charging(stopwatch: Stopwatch) -> Iterator[None]:
    """Charge the current thread's clock sleeps to ``stopwatch``."""
    token = _charged.set(stopwatch)
    try:
        yield
    finally:
        _charged.reset(token)


class _ThreadStopwatch(Stopwatch):
    """An invocation's time: its own clock sleeps, plus its other real time × real_time_scale."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.slept = 0.0  # clock seconds
        self.slept_real = 0.0  # real seconds those sleeps took
        self.real_start = time.monotonic()
        self._lock = threading.Lock()

    def charge(self, seconds: float, real_seconds: float) -> None:
        with self._lock:
            self.slept += seconds
            self.slept_real += real_seconds

    def elapsed(self) -> float:
        with self._lock:
            slept, slept_real = self.slept, self.slept_real
        working = max(0.0, time.monotonic() - self.real_start - slept_real)
        return slept + working * self.clock.real_time_scale


def _charge(seconds: float, real_seconds: float) -> None:
    stopwatch = _charged.get()
    if isinstance(stopwatch, _ThreadStopwatch) and seconds > 0:
        stopwatch.charge(seconds, real_seconds)


class _ClockStopwatch(Stopwatch):
    def __init__(self, clock: Clock):
        self.clock, self.start = clock, clock.now()

    def elapsed(self) -> float:
        return self.clock.now() - self.start


class ScaledClock(Clock):
    def __init__(self, scale: float = 1.0, start: float | None = None, real_time_scale: float = 1.0):
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.real_time_scale = real_time_scale
        self._start = time.time() if start is None else start
        self._t0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._t0) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            started = time.monotonic()
            time.sleep(seconds / self.scale)
            _charge(seconds, time.monotonic() - started)

    def stopwatch(self) -> Stopwatch:
        return _ThreadStopwatch(self)

    def execution_stopwatch(self) -> Stopwatch:
        return _ClockStopwatch(self)


class _GlobalVirtualStopwatch(Stopwatch):
    """Clock time plus real time: for whole executions (their Wait states and
    retry intervals advance the shared clock)."""

    def __init__(self, clock: VirtualClock):
        self.clock, self.start, self.real_start = clock, clock.now(), time.monotonic()

    def elapsed(self) -> float:
        return (self.clock.now() - self.start) + (time.monotonic() - self.real_start) * self.clock.real_time_scale


class VirtualClock(Clock):
    def __init__(self, start: float = 1_700_000_000.0, real_time_scale: float = 1.0):
        self._now = start
        self._lock = threading.Lock()
        self.real_time_scale = real_time_scale

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        _charge(seconds, 0.0)

    def stopwatch(self) -> Stopwatch:
        return _ThreadStopwatch(self)

    def execution_stopwatch(self) -> Stopwatch:
        return _GlobalVirtualStopwatch(self)


def execution_stopwatch(clock: Clock) -> Stopwatch:
    """The stopwatch for a whole execution (see the module docstring)."""
    if isinstance(clock, (VirtualClock, ScaledClock)):
        return clock.execution_stopwatch()
    return _ClockStopwatch(clock)
