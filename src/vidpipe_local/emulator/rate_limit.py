"""Requests-per-minute limit on the emulator clock, one sliding 60 s window
per endpoint kind (chat traffic does not starve video polling)."""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, kind: str, now: float, rpm: int) -> int | None:
        """Count the request and return None, or refuse it: the whole seconds
        until a slot frees up (for Retry-After)."""
        with self._lock:
            window = self._windows[kind]
            while window and window[0] <= now - WINDOW_S:
                window.popleft()
            if len(window) >= rpm:
                return max(1, math.ceil(window[0] + WINDOW_S - now))
            window.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
