"""One clock for everything that waits locally: the provider emulator's jobs,
Step Functions Wait states and the local SQS pollers.

- ``ScaledClock(scale)``: real time, sped up. ``sleep(s)`` sleeps s/scale real
  seconds and ``now()`` advances ``scale`` seconds per real second, so a
  provider ETA and a Wait state shrink together (the CLI and demo).
- ``VirtualClock``: nothing sleeps; ``sleep(s)`` advances the clock by s. Tests
  use it so a 15-minute generation job runs in milliseconds, deterministically.
"""

from __future__ import annotations

import threading
import time


class Clock:
    def now(self) -> float:  # seconds, provider time
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError


class ScaledClock(Clock):
    def __init__(self, scale: float = 1.0, start: float | None = None):
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._start = time.time() if start is None else start
        self._t0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._t0) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.scale)


class VirtualClock(Clock):
    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
