"""The scheduled reaper: no job stays RUNNING once its execution cannot finish it.

A job is RUNNING from the moment its execution starts until FinalizeJob
records a terminal state. If the execution ends without reaching FinalizeJob
(StopExecution → ABORTED, TIMED_OUT, a failure inside FinalizeFailed itself)
or is still running past its state machine's deadline (``TimeoutSeconds`` of
its definition), the reaper stops it, settles the job's reservation against
the ledger (only the unconsumed rest goes back) and records the job FAILED
with the reason. Jobs are found through the RUNNING index (``jobs.py``), not a Scan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from vidpipe.accounting import Accounting, reservation_id_for
from vidpipe.jobs import TERMINAL, JobStatus, JobStore
from vidpipe.observability import logger


class Deadlines:
    """A state machine's ``TimeoutSeconds`` (one DescribeStateMachine each), or the fallback."""

    def __init__(self, sfn, fallback_s: float):
        self.sfn = sfn
        self.fallback_s = fallback_s
        self._seen: dict[str, float] = {}

    def __call__(self, state_machine_arn: str) -> float:
        if state_machine_arn not in self._seen:
            definition = json.loads(self.sfn.describe_state_machine(stateMachineArn=state_machine_arn)["definition"])
            self._seen[state_machine_arn] = float(definition.get("TimeoutSeconds") or self.fallback_s)
        return self._seen[state_machine_arn]


def reap_jobs(jobs: JobStore, sfn: Any, accounting: Accounting, *, now: Callable[[], float],
              deadline_for: Callable[[str], float]) -> list[dict]:
    """Finalize FAILED every RUNNING job whose execution cannot finish it; returns what was reaped."""
    reaped = []
    for entry in jobs.running():
        job_id = entry["job_id"]
        job = jobs.get(job_id)
        if job is None or job.get("status") in TERMINAL:
            jobs.unindex_running(job_id)  # finalized normally; the index entry outlived it
            continue
        reason = _why_it_cannot_finish(entry, sfn, now=now, deadline_for=deadline_for)
        if reason is None:
            continue
        error, text = reason
        totals = accounting.settle(job_id, reservation_id_for(job_id))
        jobs.update(job_id, JobStatus.FAILED, error={"error": error, "reason": text}, spend=totals)
        logger.warning("reaped a job", extra={"job_id": job_id, "error": error, "reason": text})
        reaped.append({"job_id": job_id, "error": error, "reason": text})
    return reaped


def _why_it_cannot_finish(entry: dict, sfn: Any, *, now: Callable[[], float],
                          deadline_for: Callable[[str], float]) -> tuple[str, str] | None:
    arn = entry.get("execution_arn")
    if not arn:
        return "ExecutionMissing", "the job was marked RUNNING without an execution"
    try:
        execution = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise
        return "ExecutionMissing", "the job's execution no longer exists"
    status = execution["status"]
    if status != "RUNNING":
        return "ExecutionEnded", f"the job's execution ended {status} before it finalized the job"
    elapsed = now() - float(entry["started_at"])
    deadline = deadline_for(execution["stateMachineArn"])
    if elapsed <= deadline:
        return None
    text = (f"the job was still running {elapsed:.0f} s after it started, past its state machine's "
            f"{deadline:.0f} s deadline; the execution was stopped")
    try:
        sfn.stop_execution(executionArn=arn, error="DeadlineExceeded", cause=text)
    except ClientError as exc:
        logger.warning("stop_execution failed", extra={"execution_arn": arn, "error": str(exc)})
    return "DeadlineExceeded", text
