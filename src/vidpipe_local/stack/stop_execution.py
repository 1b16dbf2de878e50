"""StopExecution as AWS applies it: the execution is ABORTED at once.

moto 5.2.5 only flags the running program as stopped; the execution's status
stays RUNNING until the state in flight returns (a Lambda task that hangs on
a download keeps it RUNNING for as long as it hangs). On AWS, DescribeExecution
answers ABORTED as soon as StopExecution returns, and code that asks (the
reaper, StoreVideo before it commits) must see that locally too. An aborted
execution stays ABORTED: moto would otherwise rewrite the status (FAILED,
SUCCEEDED) when the task in flight returns after the stop.
"""

from __future__ import annotations

import datetime

from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution


class AbortOnStop:
    def __init__(self) -> None:
        self._original = None
        self._original_reflect = None

    def patch(self) -> None:
        original = self._original = Execution.stop
        reflect = self._original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

        def reflect_unless_aborted(comm: BaseExecutionWorkerCommunication) -> None:
            if comm.execution.exec_status == ExecutionStatus.ABORTED:
                return  # final on AWS: what the stopped task did afterwards changes nothing
            reflect(comm)

        def stop(self: Execution, stop_date: datetime.datetime, error: str | None, cause: str | None):
            original(self, stop_date, error, cause)
            if self.exec_status == ExecutionStatus.RUNNING:
                self.exec_status = ExecutionStatus.ABORTED
                self.stop_date = stop_date

        Execution.stop = stop
        BaseExecutionWorkerCommunication._reflect_execution_status = reflect_unless_aborted

    def unpatch(self) -> None:
        if self._original is not None:
            Execution.stop = self._original
            BaseExecutionWorkerCommunication._reflect_execution_status = self._original_reflect
            self._original = self._original_reflect = None
