"""Run moto's Lambda invocations in-process, on the real handler code, within
the limits Lambda enforces.

moto can only run Lambda code in Docker. We replace
``moto.awslambda.models.LambdaFunction._invoke_lambda`` (moto 5.2, pinned) so
that an invocation — from Step Functions, from our SQS pollers or from
``vidpipe invoke`` — imports functions/<dir>/app.py and calls its handler.
Errors are reported the way Lambda does (errorType = exception class name),
so the state machines' Retry/Catch behave as deployed.

Limits, as Lambda applies them (docs/local-stack-limits.md):

- ``Timeout``: the handler runs on a worker thread; its time is measured on the
  stack's clock (``Clock.stopwatch``). Past the timeout the caller gets
  ``Sandbox.Timedout`` / "Task timed out after N.00 seconds" and the abandoned
  thread is cut off: its next AWS call (botocore), HTTP request (httpx) or
  clock sleep raises ``InvocationCancelled``. A sleep that would run past the
  deadline is cut at the deadline. ``context.get_remaining_time_in_millis()``
  reads the same stopwatch.
- 6 MB synchronous request and response payloads (the response check also
  covers the SQS pollers, which do not go through moto's Invoke API).
- Concurrency: the account's concurrent-execution limit and each function's
  ``ReservedConcurrentExecutions`` (reserved capacity is taken out of the
  account's unreserved pool). An invocation over either is refused with
  ``TooManyRequestsException`` before the handler runs.
- ``MemorySize`` is passed to the context but not enforced (one shared process).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction

from vidpipe_local.clock import Clock, ScaledClock, Stopwatch, charging

# Synchronous invocation payloads, as Lambda words them: "Request must be smaller than
# 6291456 bytes", "exceeded maximum allowed payload size (6291556 bytes)".
PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
RESPONSE_LIMIT_BYTES = 6_291_556
ACCOUNT_CONCURRENCY = 1000  # Lambda's default concurrent executions per account and region
WATCH_INTERVAL_S = 0.02  # how often the caller looks at a running invocation's stopwatch


@dataclass
class LocalFunction:
    logical_id: str
    function_name: str
    code_dir: Path
    handler: str  # "app.handler"
    memory_mb: int = 512
    timeout_s: int = 60
    reserved_concurrency: int | None = None
    _callable: Callable | None = None

    def load(self) -> Callable:
        if self._callable is None:
            module_file, attr = self.handler.rsplit(".", 1)
            path = self.code_dir / f"{module_file.replace('.', '/')}.py"
            name = f"vidpipe_functions.{self.code_dir.name}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            self._callable = getattr(module, attr)
        return self._callable


class Throttled(Exception):
    """Lambda refused the invocation (TooManyRequestsException); the handler did not run."""

    def __init__(self, function_name: str, reason: str):
        super().__init__(f"Rate Exceeded. {function_name}: {reason}")
        self.reason = reason


class RequestTooLarge(Exception):
    """The request payload is over Lambda's 6 MB synchronous limit; the handler did not run."""

    def __init__(self, size: int):
        super().__init__(f"Request must be smaller than {PAYLOAD_LIMIT_BYTES} bytes for the InvokeFunction "
                         f"operation (it has {size})")
        self.reason = str(self)


class InvocationCancelled(BaseException):
    """Raised in an invocation's thread once Lambda would have frozen it (timed out).

    A BaseException, so a handler's ``except Exception`` cannot swallow it."""


class Invocation:
    """One running invocation: its stopwatch, deadline and kill switch."""

    def __init__(self, fn: LocalFunction, stopwatch: Stopwatch):
        self.fn, self.stopwatch = fn, stopwatch
        self.request_id = str(uuid.uuid4())
        self.cancelled = threading.Event()

    def remaining_s(self) -> float:
        return self.fn.timeout_s - self.stopwatch.elapsed()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise InvocationCancelled(f"{self.fn.function_name} {self.request_id} timed out; "
                                      "Lambda froze it, so this call never happens")


# The invocation a handler's code runs for: a context variable, so that threads the handler starts
# with its context (contextvars.copy_context) are cut off and charged with it.
_current: ContextVar[Invocation | None] = ContextVar("vidpipe_local_invocation", default=None)
_started = threading.local()  # per calling thread: who wants each Invocation it starts (task_timeouts.py)


def current_invocation() -> Invocation | None:
    return _current.get()


@contextmanager
def observing_invocations(observer: Callable[[Invocation], None]) -> Iterator[None]:
    """Hand every invocation the current thread starts to ``observer`` (a Task state
    watches its Lambda's stopwatch: task_timeouts.py)."""
    previous = getattr(_started, "observer", None)
    _started.observer = observer
    try:
        yield
    finally:
        _started.observer = previous


class LambdaContext:
    """The attributes Powertools and handlers read from a Lambda context."""

    def __init__(self, fn: LocalFunction, arn: str, invocation: Invocation | None = None):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = fn.memory_mb
        self.aws_request_id = invocation.request_id if invocation else str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.function_name}"
        self.log_stream_name = "local"
        self._invocation = invocation
        self._timeout_s = fn.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        if self._invocation is None:
            return self._timeout_s * 1000
        return max(0, int(self._invocation.remaining_s() * 1000))


def _error_payload(exc: BaseException) -> dict:
    """The error document Lambda's Python runtime returns for an unhandled exception."""
    return {
        "errorType": type(exc).__name__,
        # str(exc), as Lambda's Python runtime reports it: nothing here may
        # redact what a deployed function would leak into the execution history.
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
    }


def _timed_out_payload(invocation: Invocation) -> dict:
    return {"errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {invocation.request_id} Error: Task timed out after "
                            f"{invocation.fn.timeout_s:.2f} seconds"}


def _payload_size(value: Any) -> int:
    return len(json.dumps(value, default=str).encode())


class Concurrency:
    """Lambda's concurrency model: functions with reserved concurrency run within
    their reservation; all others share what the reservations leave of the account limit."""

    def __init__(self, account_limit: int):
        self.account_limit = account_limit
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._unreserved_running = 0
        self.reserved: dict[str, int] = {}

    def reserve(self, fn: LocalFunction) -> None:
        if fn.reserved_concurrency is not None:
            self.reserved[fn.function_name] = fn.reserved_concurrency
            if sum(self.reserved.values()) > self.account_limit:
                raise ValueError(f"ReservedConcurrentExecutions add up to more than the account limit "
                                 f"({self.account_limit})")

    def acquire(self, fn: LocalFunction) -> None:
        with self._lock:
            running = self._running.get(fn.function_name, 0)
            if fn.function_name in self.reserved:
                if running >= self.reserved[fn.function_name]:
                    raise Throttled(fn.function_name, "ReservedFunctionConcurrentInvocationLimitExceeded")
            else:
                pool = self.account_limit - sum(self.reserved.values())
                if self._unreserved_running >= pool:
                    raise Throttled(fn.function_name, "ConcurrentInvocationLimitExceeded")
                self._unreserved_running += 1
            self._running[fn.function_name] = running + 1

    def release(self, fn: LocalFunction) -> None:
        with self._lock:
            self._running[fn.function_name] -= 1
            if fn.function_name not in self.reserved:
                self._unreserved_running -= 1

    def running(self, function_name: str) -> int:
        with self._lock:
            return self._running.get(function_name, 0)

    def running_total(self) -> int:
        """Invocations running now, every function (the task-token waits' idle check: callbacks.py)."""
        with self._lock:
            return sum(self._running.values())


class InProcessLambdas:
    """Registry of local functions and the moto patch that calls them."""

    def __init__(self, clock: Clock | None = None, account_concurrency: int = ACCOUNT_CONCURRENCY):
        self.functions: dict[str, LocalFunction] = {}
        self.clock = clock or ScaledClock(1.0)
        self.concurrency = Concurrency(account_concurrency)
        self.timed_out: list[Invocation] = []  # invocations that hit their timeout, in order
        self._original = None
        self._kill_switch: _KillSwitch | None = None

    def register(self, fn: LocalFunction) -> None:
        self.functions[fn.function_name] = fn
        self.concurrency.reserve(fn)

    def by_logical_id(self, logical_id: str) -> LocalFunction:
        for fn in self.functions.values():
            if fn.logical_id == logical_id:
                return fn
        raise KeyError(f"no function {logical_id!r} in template.yaml")

    def invoke(self, function_name: str, event: Any, arn: str = "") -> tuple[Any, bool]:
        """Call a handler; returns (result or Lambda-style error payload, errored).

        Raises ``Throttled`` or ``RequestTooLarge`` when Lambda would refuse the
        invocation before running it (the caller sees an API error, not a function error)."""
        fn = self.functions[function_name]
        size = _payload_size(event)
        if size >= PAYLOAD_LIMIT_BYTES:
            raise RequestTooLarge(size)
        self.concurrency.acquire(fn)
        try:
            result, errored = self._run(fn, event, arn)
        finally:
            self.concurrency.release(fn)
        if not errored and _payload_size(result) > RESPONSE_LIMIT_BYTES:
            result, errored = {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                f"({RESPONSE_LIMIT_BYTES} bytes).",
            }, True
        return result, errored

    def _run(self, fn: LocalFunction, event: Any, arn: str) -> tuple[Any, bool]:
        handler = fn.load()
        invocation = Invocation(fn, self.clock.stopwatch())
        if (observer := getattr(_started, "observer", None)) is not None:
            observer(invocation)
        outcome: list[tuple[Any, bool]] = []
        finished = threading.Event()

        def run() -> None:
            _current.set(invocation)  # this thread's own context: nothing to reset
            try:
                with charging(invocation.stopwatch):
                    outcome.append((handler(event, LambdaContext(fn, arn, invocation)), False))
            except InvocationCancelled:
                pass  # the caller already reported Sandbox.Timedout
            except BaseException as exc:  # reported to the caller exactly like Lambda does
                outcome.append((_error_payload(exc), True))
            finally:
                finished.set()

        worker = threading.Thread(target=run, name=f"lambda-{fn.logical_id}", daemon=True)
        worker.start()
        while not finished.wait(WATCH_INTERVAL_S):
            if invocation.remaining_s() <= 0:
                break
        # Finished, but past the deadline (a VirtualClock sleep jumps): Lambda would have cut it off.
        if not outcome or invocation.remaining_s() < 0:
            invocation.cancelled.set()
            self.timed_out.append(invocation)
            return _timed_out_payload(invocation), True
        return outcome[0]

    def sleep_for_handlers(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        """The clock's sleep as handlers see it: a sleep past the invocation's
        deadline ends at the deadline with the invocation cut off."""

        def invocation_sleep(seconds: float) -> None:
            invocation = current_invocation()
            if invocation is None:
                sleep(seconds)
                return
            invocation.check()
            remaining = invocation.remaining_s()
            if seconds > remaining:
                sleep(max(0.0, remaining))
                invocation.cancelled.set()
                invocation.check()
            sleep(seconds)
            invocation.check()

        return invocation_sleep

    def patch(self) -> None:
        registry = self
        self._original = LambdaFunction._invoke_lambda

        def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            if self.function_name not in registry.functions:
                return registry._original(self, event)
            payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
            try:
                result, errored = registry.invoke(self.function_name, payload, self.function_arn)
            except Throttled as exc:
                raise LambdaApiError("TooManyRequestsException", str(exc), 429) from exc
            except RequestTooLarge as exc:
                raise LambdaApiError("RequestEntityTooLargeException", str(exc), 413) from exc
            return json.dumps(result, default=str), errored, ""

        LambdaFunction._invoke_lambda = _invoke_lambda
        self._kill_switch = _KillSwitch()
        self._kill_switch.install()

    def unpatch(self) -> None:
        if self._original is not None:
            LambdaFunction._invoke_lambda = self._original
            self._original = None
        if self._kill_switch is not None:
            self._kill_switch.uninstall()
            self._kill_switch = None


class LambdaApiError(LambdaClientError):
    """An Invoke API error (the caller gets a ClientError with this code)."""

    def __init__(self, code: str, message: str, status: int):
        self.code = status
        super().__init__(code, message)
        self.code = status


class _KillSwitch:
    """Stops a timed-out invocation's later side effects: botocore API calls and
    httpx requests made from its thread raise ``InvocationCancelled``.

    Threads the handler starts itself are not covered (Python cannot stop a thread)."""

    def __init__(self):
        self._saved: list[tuple[type, str, Callable]] = []

    def install(self) -> None:
        import botocore.client
        import httpx

        self._wrap(botocore.client.BaseClient, "_make_api_call")
        self._wrap(httpx.Client, "send")

    def _wrap(self, owner: type, name: str) -> None:
        original = getattr(owner, name)

        def guarded(*args, **kwargs):
            invocation = current_invocation()
            if invocation is not None:
                invocation.check()
            return original(*args, **kwargs)

        self._saved.append((owner, name, original))
        setattr(owner, name, guarded)

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
