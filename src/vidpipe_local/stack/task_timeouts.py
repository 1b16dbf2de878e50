"""A Lambda Task's own ``TimeoutSeconds`` / ``TimeoutSecondsPath`` on the stack's clock.

moto 5.2.5 runs a Task on a thread and waits for it TimeoutSeconds *real* seconds
(``ExecutionState._evaluate_with_timeout``: ``Event.wait``). Locally a Lambda's time is
clock time (lambdas.py: its invocation's stopwatch), so on a VirtualClock such a timeout never
fired and on a ScaledClock it fired ``scale`` times late. Here a Task that invokes a Lambda
function (a function ARN, or ``arn:aws:states:::lambda:invoke`` with or without
``.waitForTaskToken``) measures its timeout on the stopwatch of the invocation it started, the one
the function's own Timeout is measured on. Past TimeoutSeconds the Task fails with
``States.Timeout`` (history ``LambdaFunctionTimedOut``, or ``TaskTimedOut`` for lambda:invoke),
which Retry and Catch match as on AWS. Step Functions does not stop the function: it runs on
until its own Timeout; its result is dropped (no late ``LambdaFunctionSucceeded``). A handler that
returns after the deadline (a VirtualClock sleep jumps) timed out too, as in lambdas.py.

The task-token wait of ``.waitForTaskToken`` is timed by callbacks.py. HeartbeatSeconds is not
modelled: a Lambda sends no heartbeats, and a callback's heartbeat wait is moto's (real time).
"""

from __future__ import annotations

import threading

from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.utils import TMP_THREADS

from vidpipe_local.stack.lambdas import WATCH_INTERVAL_S, Invocation, observing_invocations
from vidpipe_local.stack.patching import ClassPatches

_task = threading.local()  # the timeout (seconds) of the Task this thread evaluates, if it set one


class LambdaTaskTimeouts(ClassPatches):
    def patch(self) -> None:
        for owner in (StateTaskLambda, StateTaskServiceLambda):
            self.replace(owner, "_eval_execution", _with_task_timeout(owner._eval_execution))
        self.replace(lambda_eval_utils, "execute_lambda_function_integration",
                     _timed_invocation(lambda_eval_utils.execute_lambda_function_integration))


def _with_task_timeout(original):
    def _eval_execution(self, env) -> None:
        if self.timeout.is_default_value():
            return original(self, env)
        self.timeout.eval(env=env)  # TimeoutSeconds, or TimeoutSecondsPath on the state's input
        _task.timeout_s = float(env.stack.pop())
        try:
            return original(self, env)
        finally:
            _task.timeout_s = None

    return _eval_execution


def _timed_invocation(original):
    def execute_lambda_function_integration(env, parameters, region, state_credentials) -> None:
        timeout_s = getattr(_task, "timeout_s", None)
        if timeout_s is None:
            return original(env, parameters, region, state_credentials)
        started: list[Invocation] = []
        failed: list[BaseException] = []
        done = threading.Event()

        def invoke() -> None:
            try:
                with observing_invocations(started.append):
                    original(env, parameters, region, state_credentials)
            except BaseException as exc:
                failed.append(exc)
            finally:
                done.set()

        def used() -> float:
            return started[0].stopwatch.elapsed() if started else 0.0

        worker = threading.Thread(target=invoke, name="lambda-task", daemon=True)
        TMP_THREADS.append(worker)
        worker.start()
        while not done.wait(WATCH_INTERVAL_S):
            if used() >= timeout_s:
                raise EvalTimeoutError()
        if used() >= timeout_s:  # returned, but past the deadline (a VirtualClock sleep jumps)
            raise EvalTimeoutError()
        if failed:
            raise failed[0]

    return execute_lambda_function_integration
