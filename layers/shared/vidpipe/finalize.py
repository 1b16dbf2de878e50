"""The last step of both flows: settle the money, then record a terminal job state.

The terminal state is then announced (vidpipe.completion: an EventBridge event and,
if asked, a callback); a failed announcement raises AwsTransient and the step's
Retry runs this again, which settles nothing twice and announces again.

Settling happens on failure too: calls left in flight (intents) are recorded at
their estimate, and what no call consumed of the reservation goes back, so a
failed job never leaks a reservation. Spend itself reached the budget when each
call was recorded; a call recorded after this still adds to ``spent``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from vidpipe.completion import announce
from vidpipe.jobs import JobStatus
from vidpipe.observability import logger
from vidpipe.redaction import redact
from vidpipe.runtime import Deps


REJECTED_AT_A_STEP = frozenset({"ReferenceImageRejected"})  # error names that end a job REJECTED


class FinalizeInput(BaseModel):
    job_id: str
    outcome: str  # SUCCEEDED | FAILED
    reservation_id: str | None = None
    outputs: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # a Catch's {"Error", "Cause"}


def explain(error: dict | None) -> dict:
    """Turn a Step Functions Catch output into {error, reason}: one readable line."""
    if not error:
        return {"error": "Unknown", "reason": "the job failed without an error description"}
    name = error.get("Error", "Error")
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        reason = parsed.get("errorMessage") or cause
    except (json.JSONDecodeError, AttributeError):
        reason = cause
    # Redacted again here: a Cause can come from outside our code (a Lambda timeout,
    # a States.* error), and the line is cut after redaction so no half key survives.
    return {"error": redact(name), "reason": redact(str(reason or name)).splitlines()[0][:1000]}


def finalize(event: FinalizeInput, deps: Deps) -> dict:
    totals = deps.accounting.settle(event.job_id, event.reservation_id)
    if event.outcome == "SUCCEEDED":
        status, error = JobStatus.SUCCEEDED, None
    else:
        error = explain(event.error)
        # Input found unusable only once a step fetched it (a reference image) never validated.
        status = JobStatus.REJECTED if error["error"] in REJECTED_AT_A_STEP else JobStatus.FAILED
        logger.warning("job failed", extra={"job_id": event.job_id, **error})
    deps.jobs.update(event.job_id, status, outputs=event.outputs, details=event.details, error=error, spend=totals)
    # Announced as stored: on a retry (the update already done, the announcement failed) or when
    # another writer ended the job first, the record's own terminal state is what is announced.
    record = deps.jobs.get(event.job_id)
    if record is not None:
        announce(record, deps=deps)
    return {"job_id": event.job_id, "status": str(status), "error": error, "spend": totals}
