"""Job records in the single table: pk=JOB#<id>, sk=JOB.

A job moves PENDING → RUNNING → SUCCEEDED | FAILED | PARTIAL (a production
some of whose shots failed), or is REJECTED when its input never validated.
Terminal states are final: a late writer cannot move a job out of one
(conditional update). Reaching one is announced (vidpipe.completion).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from vidpipe import aws

TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "PARTIAL")

# A REJECTED record quotes what it was sent, so it is bounded whatever was sent
# (DynamoDB refuses items over 400 KB): the reason is at most MAX_REASON_CHARS,
# with at most MAX_REASON_LINES readable lines kept as details.
MAX_REASON_CHARS = 1000
MAX_REASON_LINES = 20


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    PARTIAL = "PARTIAL"  # terminal: a production delivered, with some shots missing


RUNNING_INDEX_PK = "JOBS#RUNNING"


def running_key(job_id: str) -> dict:
    return {"pk": {"S": RUNNING_INDEX_PK}, "sk": {"S": job_id}}


def job_key(job_id: str) -> dict:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def stable_id(prefix: str, *parts: str, length: int = 24) -> str:
    """A deterministic id (also a valid Step Functions execution name, ≤80 chars)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]
    return f"{prefix}-{digest}"


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and how long it was."""
    if len(text) <= limit:
        return text
    marker = f"… ({len(text)} chars)"
    return text[:max(0, limit - len(marker))] + marker


def rejection(errors: list[str]) -> dict:
    """The ``error`` attribute of a REJECTED job: ``reason`` (≤ MAX_REASON_CHARS) and
    ``details`` (≤ MAX_REASON_LINES lines, each ≤ MAX_REASON_CHARS)."""
    details = [cut(line, MAX_REASON_CHARS) for line in errors[:MAX_REASON_LINES]]
    if len(errors) > MAX_REASON_LINES:
        details.append(f"… and {len(errors) - MAX_REASON_LINES} more")
    return {"error": "InputRejected", "reason": cut("; ".join(details), MAX_REASON_CHARS), "details": details}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ser = TypeSerializer()
_de = TypeDeserializer()


def to_item(value: dict) -> dict:
    """Plain dict → DynamoDB attribute map (floats become Decimal)."""
    return {k: _ser.serialize(_dynamo_safe(v)) for k, v in value.items()}


def from_item(item: dict) -> dict:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _dynamo_safe(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _dynamo_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_dynamo_safe(v) for v in value]
    return value


def json_safe(value: Any) -> Any:
    """DynamoDB values (Decimal, set) → JSON-serialisable values."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class JobStore:
    def __init__(self, table_name: str, client=None):
        self.table = table_name
        self.ddb = client or aws.client("dynamodb")

    def create(self, job_id: str, kind: str, request: dict, status: JobStatus = JobStatus.PENDING,
               **extra) -> bool:
        """Create the job once. Returns False if it already exists (a duplicate)."""
        stamp = now_iso()
        record = {"job_id": job_id, "kind": kind, "status": str(status), "request": request,
                  "created_at": stamp, "updated_at": stamp, **extra}
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={**job_key(job_id), **to_item(record)},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def get(self, job_id: str) -> dict | None:
        item = self.ddb.get_item(TableName=self.table, Key=job_key(job_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        record = from_item(item)
        record.pop("pk", None)
        record.pop("sk", None)
        return record

    def update(self, job_id: str, status: JobStatus | None = None, **fields) -> bool:
        """Set fields (and optionally the status) unless the job is already terminal.

        Returns False when the job was terminal (or missing) and nothing changed.
        """
        fields = {k: v for k, v in fields.items() if v is not None}
        fields["updated_at"] = now_iso()
        if status is not None:
            fields["status"] = str(status)
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": _ser.serialize(_dynamo_safe(v)) for i, v in enumerate(fields.values())}
        values.update({f":t{i}": {"S": s} for i, s in enumerate(TERMINAL)})
        names["#status"] = "status"
        if status == JobStatus.RUNNING:
            # Indexed first: a job is never RUNNING without the reaper able to find it.
            self._index_running(job_id, fields.get("execution_arn"))
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ConditionExpression="attribute_exists(pk) AND NOT #status IN ("
                + ", ".join(f":t{i}" for i in range(len(TERMINAL))) + ")",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            updated = True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            updated = False
        if status is not None and str(status) in TERMINAL:
            self.unindex_running(job_id)
        return updated

    # -- the reaper's index of RUNNING jobs ------------------------------------
    #    JOBS#RUNNING / <job_id>   execution_arn, started_at (vidpipe.clock seconds)

    def _index_running(self, job_id: str, execution_arn: str | None) -> None:
        from vidpipe import clock

        entry = {"job_id": job_id, "execution_arn": execution_arn, "started_at": clock.now()}
        self.ddb.put_item(TableName=self.table, Item={**running_key(job_id), **to_item(entry)})

    def unindex_running(self, job_id: str) -> None:
        self.ddb.delete_item(TableName=self.table, Key=running_key(job_id))

    def running(self) -> list[dict]:
        """The index entries of jobs marked RUNNING and not yet terminal (one Query)."""
        entries = []
        for page in self.ddb.get_paginator("query").paginate(
                TableName=self.table, ConsistentRead=True, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": RUNNING_INDEX_PK}}):
            entries += [from_item(item) for item in page.get("Items", [])]
        return entries

    def annotate(self, job_id: str, **fields) -> None:
        """Add facts to a job record even when it is terminal (e.g. how a watched
        provider job ended after the job failed). Never changes the status."""
        fields = {k: v for k, v in fields.items() if v is not None and k != "status"}
        fields["updated_at"] = now_iso()
        self.ddb.update_item(
            TableName=self.table, Key=job_key(job_id),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={f"#f{i}": k for i, k in enumerate(fields)},
            ExpressionAttributeValues={f":v{i}": _ser.serialize(_dynamo_safe(v))
                                       for i, v in enumerate(fields.values())},
        )
