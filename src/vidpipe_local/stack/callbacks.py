"""Task-token waits (``.waitForTaskToken``) on the local clock, and spent tokens refused.

moto 5.2.5 waits for a task token in real time (``StateTaskServiceCallback.
_wait_for_task_token_timeout``: ``Event.wait(TimeoutSeconds)``). Locally the wait runs on the
stack's clock, like Wait states (waits.py):

- ScaledClock: the timeout lasts TimeoutSeconds / scale real seconds.
- VirtualClock: while any execution waits on a token, one ticker advances the clock by
  ``step_s`` every ``pause_s`` real seconds (600 clock seconds per real second by default), but
  only while nothing else is under way (``busy``: a Lambda invocation running, a webhook the
  emulator is delivering). So the provider emulator's jobs end during the wait (their end is what
  sends the webhook), a 600 s fallback lasts about a real second, and the time a webhook spends
  in flight costs no clock time: however slow the machine, a delivery is never stale on arrival
  and never loses the race against the fallback. How many executions wait does not change the
  pace (each wait would otherwise push the shared clock on its own).

Every task-token wait runs on the clock: a provider's completion (the Generation ASL's
AwaitCompletion) and a person's storyboard approval alike, so an approval deadline of a day
passes in a couple of real minutes on a VirtualClock and a test that approves does so well
within it.

Every wait that ends (resumed or timed out) marks its token spent, as AWS does: a later
SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat with it gets ``TaskTimedOut``
(moto would accept it silently).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

from vidpipe_local.clock import Clock, VirtualClock
from vidpipe_local.stack.patching import ClassPatches


class ClockedCallbacks(ClassPatches):
    def __init__(self, clock: Clock, busy: Callable[[], bool] = lambda: False, step_s: float = 3.0,
                 pause_s: float = 0.005):
        super().__init__()
        self.clock, self.busy, self.step_s, self.pause_s = clock, busy, step_s, pause_s
        self._waiting = 0
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    def wait(self, timeout_s: float, endpoint) -> object | None:
        """The callback's outcome, or None once ``timeout_s`` clock seconds passed without one."""
        if isinstance(self.clock, VirtualClock):
            deadline = self.clock.now() + timeout_s
            self._enter()
            try:
                while self.clock.now() < deadline:
                    if endpoint._notify_event.wait(self.pause_s):
                        break
            finally:
                self._leave()
            return endpoint.get_outcome()
        scale = getattr(self.clock, "scale", 1.0)
        end = time.monotonic() + timeout_s / scale
        while (left := end - time.monotonic()) > 0:
            if endpoint._notify_event.wait(min(left, 0.05)):
                break
        return endpoint.get_outcome()

    def _enter(self) -> None:
        with self._lock:
            self._waiting += 1
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="callback-clock", daemon=True)
                self._ticker.start()

    def _leave(self) -> None:
        with self._lock:
            self._waiting -= 1

    def _tick(self) -> None:
        while True:
            time.sleep(self.pause_s)
            with self._lock:
                if self._waiting == 0:
                    self._ticker = None
                    return
            if not self.busy():
                self.clock.advance(self.step_s)

    def patch(self) -> None:
        callbacks = self

        def _wait_for_task_token_timeout(self, timeout_seconds, callback_endpoint):
            try:
                return callbacks.wait(float(timeout_seconds), callback_endpoint)
            finally:
                callback_endpoint.report(CallbackConsumerTimeout())  # the token is spent

        self.replace(StateTaskServiceCallback, "_wait_for_task_token_timeout", _wait_for_task_token_timeout)
