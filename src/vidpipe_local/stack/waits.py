"""Make Step Functions Wait states and Retry intervals (executed by moto)
wait on the local clock.

moto waits in real time (``WaitFunction._wait_interval`` and ``time.sleep``
in the retrier). With the local clock a Wait of 600 s lasts 600/scale real
seconds (ScaledClock) or advances a VirtualClock at once, in step with the
provider emulator's jobs. A Wait that would outlast the execution's
TimeoutSeconds ends at the deadline with the execution TIMED_OUT (sfn_limits.py).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from vidpipe_local.clock import Clock


class ClockedWaits:
    def __init__(self, clock: Clock, execution_remaining: Callable[[Any], float | None] | None = None):
        self.clock = clock
        self.execution_remaining = execution_remaining or (lambda env: None)
        self._original = None
        self._original_time = None

    def patch(self) -> None:
        waits = self
        self._original = WaitFunction._wait_interval

        def _wait_interval(self, env, wait_seconds: int) -> None:
            if not env.is_running():
                return
            remaining = waits.execution_remaining(env)
            if remaining is not None and remaining < wait_seconds:
                waits.clock.sleep(max(0.0, remaining))
                env.set_timed_out()
                return
            waits.clock.sleep(float(wait_seconds))

        WaitFunction._wait_interval = _wait_interval

        self._original_time = retrier_decl.time
        retrier_decl.time = SimpleNamespace(sleep=self.clock.sleep)

    def unpatch(self) -> None:
        if self._original is not None:
            WaitFunction._wait_interval = self._original
            self._original = None
        if self._original_time is not None:
            retrier_decl.time = self._original_time
            self._original_time = None
