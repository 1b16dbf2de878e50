"""Step Functions limits that moto 5.2.5's interpreter (moto.stepfunctions.parser)
does not apply the way AWS does, patched at the narrowest points:

- ``States.ALL`` (and ``States.TaskFailed``) do not match ``States.DataLimitExceeded``
  or ``States.Runtime``: on AWS those end the execution; a Catch or Retry on
  ``States.ALL`` passes them by (``ErrorEqualsDecl._eval_body``). moto already
  raises DataLimitExceeded for a state output or Lambda result over 256 KiB.
- A Lambda API error (throttle, payload too large, ...) reaches the ASL as
  ``Lambda.<ErrorCode>`` (``Lambda.TooManyRequestsException``), not moto's
  generic ``Exception`` (``StateTaskLambda._from_error``), so only the Retry
  that names it retries it.
- 25,000 history events: the state that would start past the limit fails the
  execution with ``States.Runtime`` (``CommonStateField._eval_body``).
- The state machine's ``TimeoutSeconds`` is measured on the local clock (moto
  waits that many real seconds) and ends the execution TIMED_OUT: checked while
  a state runs (``Program.eval``), before each state starts, and by Wait states,
  which end at the deadline (waits.py asks ``execution_remaining``).
"""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    HistoryEventType,
    LambdaFunctionFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.utils import TMP_THREADS

from vidpipe_local.clock import Clock, Stopwatch, execution_stopwatch
from vidpipe_local.stack.patching import ClassPatches

HISTORY_EVENT_LIMIT = 25_000
UNCATCHABLE = frozenset({StatesErrorNameType.StatesStatesDataLimitExceeded.to_name(),
                         StatesErrorNameType.StatesRuntime.to_name()})
_WATCH_INTERVAL_S = 0.05


def _events_so_far(env) -> int:
    return env.event_manager._event_id_gen._next_id - 1


class StepFunctionsLimits(ClassPatches):
    def __init__(self, clock: Clock, history_event_limit: int = HISTORY_EVENT_LIMIT):
        super().__init__()
        self.clock = clock
        self.history_event_limit = history_event_limit
        self._deadlines: dict[int, tuple[Stopwatch, float]] = {}  # id(event manager) → (stopwatch, timeout)
        self._lock = threading.Lock()

    def execution_remaining(self, env) -> float | None:
        """Seconds left before the execution's TimeoutSeconds (None: no timeout)."""
        with self._lock:
            deadline = self._deadlines.get(id(env.event_manager))
        if deadline is None:
            return None
        stopwatch, timeout = deadline
        return timeout - stopwatch.elapsed()

    def patch(self) -> None:
        limits = self
        original_matches = ErrorEqualsDecl._eval_body

        def error_equals(self, env) -> None:
            name = getattr(env.stack[-1], "error_name", None)
            if name in UNCATCHABLE and not any(e.error_name == name for e in self.error_names):
                env.stack.pop()
                env.stack.append(False)  # only an explicit ErrorEquals names it
                return
            original_matches(self, env)

        original_from_error = StateTaskLambda._from_error

        def from_error(self, env, ex):
            if isinstance(ex, ClientError):
                error = f"Lambda.{ex.response['Error'].get('Code', 'Unknown')}"
                return FailureEvent(
                    env=env, error_name=CustomErrorName(error),
                    event_type=HistoryEventType.LambdaFunctionFailed,
                    event_details=EventDetails(lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
                        error=error, cause=ex.response["Error"].get("Message", ""))))
            return original_from_error(self, env, ex)

        original_state_body = CommonStateField._eval_body

        def state_body(self, env) -> None:
            remaining = limits.execution_remaining(env)
            if remaining is not None and remaining <= 0:
                env.set_timed_out()
                return
            if _events_so_far(env) >= limits.history_event_limit:
                error = StatesErrorNameType.StatesRuntime
                cause = (f"The execution reached the maximum number of history events "
                         f"({limits.history_event_limit}) before state '{self.name}'.")
                raise FailureEventException(failure_event=FailureEvent(
                    env=env, error_name=StatesErrorName(typ=error), event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
                        error=error.to_name(), cause=cause))))
            original_state_body(self, env)

        def program_eval(self, env) -> None:
            timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
            env.next_state_name = self.start_at.start_at_name
            worker = threading.Thread(target=super(Program, self).eval, args=(env,), daemon=True)
            TMP_THREADS.append(worker)
            stopwatch = execution_stopwatch(limits.clock)
            key = id(env.event_manager)
            if timeout is not None:
                with limits._lock:
                    limits._deadlines[key] = (stopwatch, float(timeout))
            worker.start()
            try:
                while True:
                    worker.join(_WATCH_INTERVAL_S)
                    if not worker.is_alive():
                        return
                    if timeout is not None and stopwatch.elapsed() >= timeout:
                        env.set_timed_out()
                        return
            finally:
                with limits._lock:
                    limits._deadlines.pop(key, None)

        self.replace(ErrorEqualsDecl, "_eval_body", error_equals)
        self.replace(StateTaskLambda, "_from_error", from_error)
        self.replace(CommonStateField, "_eval_body", state_body)
        self.replace(Program, "eval", program_eval)
