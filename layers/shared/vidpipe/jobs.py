"""Job records in the single table: pk=JOB#<id>, sk=JOB.

A job moves PENDING → RUNNING → SUCCEEDED | FAILED, or is REJECTED when its
input never validated. Terminal states are final: a late writer cannot move a
job out of one (conditional update).
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

TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED")


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


def job_key(job_id: str) -> dict:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def stable_id(prefix: str, *parts: str, length: int = 24) -> str:
    """A deterministic id (also a valid Step Functions execution name, ≤80 chars)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]
    return f"{prefix}-{digest}"


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
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
