"""Completion events out: every job that reaches a terminal state is announced.

``announce(job, deps=...)`` takes the job record as stored (``JobStore.get``)
once its status is terminal and

1. publishes one EventBridge event on ``Settings.event_bus_name``:
   ``source: "vidpipe"``, ``detail-type: "Job Succeeded" | "Job Failed" |
   "Job Rejected" | "Job Partial"``, ``detail`` = ``event_detail(job)``;
2. if the job's request carried a ``callback_url``, puts one message on the
   CallbacksQueue, from which CallbackFunction POSTs the same detail, signed
   (``vidpipe.callbacks``).

Delivery is at least once, never at most once. A failed PutEvents entry
(``FailedEntryCount``) or a failed SendMessage raises ``AwsTransient``, which the
calling step retries (FinalizeJob's Retry; StartJobs' SQS redelivery); a retry
announces again, so a consumer may see an event twice. ``detail.id`` (also the
callback's ``webhook-id``) is stable per job and status (``<job_id>-<status>``):
consumers dedupe on it.

The detail is bounded (``MAX_DETAIL_BYTES``, far under EventBridge's 256 KB per
entry): outputs that would not fit are replaced by a note naming the job record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe import aws
from vidpipe.config import Settings
from vidpipe.errors import AwsTransient
from vidpipe.jobs import MAX_REASON_CHARS, TERMINAL, cut, json_safe
from vidpipe.observability import logger

SOURCE = "vidpipe"
DETAIL_TYPES = {
    "SUCCEEDED": "Job Succeeded",
    "FAILED": "Job Failed",
    "REJECTED": "Job Rejected",
    "PARTIAL": "Job Partial",
}
# EventBridge takes 256 KB per entry (detail + envelope); a detail stays far below.
MAX_DETAIL_BYTES = 32 * 1024
DETAIL_VERSION = 1


@dataclass
class AnnounceDeps:
    """What ``announce`` needs when no full ``runtime.Deps`` is at hand (StartJobs):
    settings, and optionally injected clients (otherwise ``vidpipe.aws`` makes them)."""

    settings: Settings
    events: Any = None
    sqs: Any = None


def event_id(job_id: str, status: str) -> str:
    """Stable per job and terminal status: the consumers' dedupe key (and the callback's webhook-id)."""
    return f"{job_id}-{status.lower()}"


def event_detail(job: dict) -> dict:
    """The event's (and callback's) ``detail`` for a terminal job record."""
    status = str(job["status"])
    error = job.get("error") or {}
    detail = {
        "id": event_id(job["job_id"], status),
        "version": DETAIL_VERSION,
        "job_id": job["job_id"],
        "kind": job.get("kind") or "unknown",
        "status": status,
        "outputs": json_safe(job.get("outputs")) if job.get("outputs") is not None else None,
        "spend": json_safe(job.get("spend")) if job.get("spend") is not None else None,
        "reason": cut(str(error["reason"]), MAX_REASON_CHARS) if error.get("reason") else None,
        "error": cut(str(error["error"]), 128) if error.get("error") else None,
        "finished_at": job.get("updated_at"),
    }
    if _size(detail) > MAX_DETAIL_BYTES:
        detail["outputs"] = {"omitted": f"over {MAX_DETAIL_BYTES} bytes; read job {job['job_id']}'s record"}
    if _size(detail) > MAX_DETAIL_BYTES:
        detail["spend"] = {"omitted": f"over {MAX_DETAIL_BYTES} bytes; read job {job['job_id']}'s record"}
    return detail


def callback_message(job: dict, detail: dict) -> dict | None:
    """The CallbacksQueue message for a job whose request asked for a callback, else None."""
    url = (job.get("request") or {}).get("callback_url")
    if not url:
        return None
    return {"url": url, "webhook_id": detail["id"], "detail": detail}


def announce(job: dict, *, deps: Any) -> dict | None:
    """Publish the terminal ``job``'s event (and queue its callback). Safe to call again:
    the repeat carries the same ``detail.id``. Returns the detail, or None when there is
    nothing to announce (not terminal, or no bus configured). Raises AwsTransient."""
    status = str(job.get("status"))
    if status not in TERMINAL:
        logger.warning("not announcing a job that is not terminal", extra={"job_id": job.get("job_id"),
                                                                          "status": status})
        return None
    settings: Settings = deps.settings
    detail = event_detail(job)
    if not settings.event_bus_name:
        logger.debug("no event bus configured: job not announced", extra={"job_id": job["job_id"]})
        return None
    _put_event(getattr(deps, "events", None) or aws.client("events"), settings.event_bus_name, status, detail)
    message = callback_message(job, detail)
    if message is not None:
        if not settings.callbacks_queue_url:
            logger.error("the job asked for a callback but CALLBACKS_QUEUE_URL is not set",
                         extra={"job_id": job["job_id"]})
        else:
            _send(getattr(deps, "sqs", None) or aws.client("sqs"), settings.callbacks_queue_url, message)
    logger.info("job announced", extra={"job_id": job["job_id"], "status": status,
                                        "callback": message is not None})
    return detail


def _put_event(events, bus: str, status: str, detail: dict) -> None:
    entry = {"Source": SOURCE, "DetailType": DETAIL_TYPES[status], "Detail": json.dumps(detail),
             "EventBusName": bus, "Resources": []}
    try:
        response = events.put_events(Entries=[entry])
    except (ClientError, BotoCoreError) as exc:
        raise AwsTransient(f"PutEvents failed: {_describe(exc)}", code=_code(exc)) from exc
    if response.get("FailedEntryCount"):
        failed = next((e for e in response.get("Entries", []) if e.get("ErrorCode")), {})
        raise AwsTransient(f"PutEvents refused the event: {failed.get('ErrorCode', 'unknown')} "
                           f"{failed.get('ErrorMessage', '')}".strip(), code=failed.get("ErrorCode"))


def _send(sqs, queue_url: str, message: dict) -> None:
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
    except (ClientError, BotoCoreError) as exc:
        raise AwsTransient(f"queueing the callback failed: {_describe(exc)}", code=_code(exc)) from exc


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def _describe(exc: Exception) -> str:
    return _code(exc)


def _size(value: Any) -> int:
    return len(json.dumps(value).encode())
