"""Turn SQS records into jobs: upload notifications → analysis, job messages →
generation (or analysis of an object already in S3).

Every job gets a deterministic id that is also its execution name, so a
duplicated notification or a redelivered message starts nothing new. A message
that can never be valid becomes a REJECTED job (the sender can read why) and is
not retried; a transient failure raises, so the record is retried and ends in
the DLQ after the redrive limit.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, ValidationError, field_validator

from vidpipe.jobs import JobStatus, JobStore, stable_id
from vidpipe.observability import logger

OPTIONS_METADATA_KEY = "vidpipe-options"  # x-amz-meta-vidpipe-options: JSON analysis options


class AnalysisOptions(BaseModel):
    sampling: str | None = Field(default=None, pattern="^(uniform|scene|keyframes)$")
    fps: float | None = Field(default=None, gt=0, le=30)
    model: str | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    frames_per_chunk: int | None = Field(default=None, ge=1, le=64)

    @field_validator("model")
    @classmethod
    def _priced(cls, value: str | None) -> str | None:
        from vidpipe.config import get_settings
        from vidpipe.generation.messages import priced_model

        return None if value is None else priced_model(value, "chat", get_settings())


@dataclass
class Started:
    job_id: str
    kind: str
    duplicate: bool


class StartJobs:
    def __init__(self, jobs: JobStore, sfn, s3, analysis_arn: str, generation_arn: str, media_bucket: str):
        self.jobs, self.sfn, self.s3 = jobs, sfn, s3
        self.analysis_arn, self.generation_arn, self.media_bucket = analysis_arn, generation_arn, media_bucket

    def handle_body(self, body: str, message_id: str) -> list[Started]:
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            payload = None  # parse_job_message explains what is wrong with it
        if isinstance(payload, dict) and "Records" in payload and _is_s3_event(payload):
            return [self.start_upload(r["s3"]) for r in payload["Records"]
                    if r.get("eventName", "").startswith("ObjectCreated")]
        if isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent":
            logger.info("ignoring the S3 test event sent when notifications are configured")
            return []
        return [self.start_message(body, message_id)]

    # ------------------------------------------------------------ uploads
    def start_upload(self, s3_record: dict) -> Started:
        bucket = s3_record["bucket"]["name"]
        # S3 URL-encodes keys in notifications, with '+' for spaces.
        key = urllib.parse.unquote_plus(s3_record["object"]["key"])
        job_id = upload_job_id(bucket, key, s3_record["object"].get("eTag", ""))
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return self.reject_job(job_id, "analysis", {"bucket": bucket, "key": key},
                                       [f"s3://{bucket}/{key} no longer exists"])
            raise
        try:
            options = AnalysisOptions.model_validate_json(head.get("Metadata", {}).get(OPTIONS_METADATA_KEY) or "{}")
        except ValidationError as exc:
            return self.reject_job(job_id, "analysis", {"bucket": bucket, "key": key}, _readable(exc))
        return self.start_analysis(job_id, bucket, key, options.model_dump(exclude_none=True))

    def start_analysis(self, job_id: str, bucket: str, key: str, options: dict) -> Started:
        request = {"bucket": bucket, "key": key, "options": options}
        return self._create_and_start(job_id, "analysis", request, self.analysis_arn,
                                      {"job_id": job_id, **request})

    # ------------------------------------------------------------ job messages
    def start_message(self, body: str, message_id: str) -> Started:
        from vidpipe.generation.messages import AnalyzeJob, InvalidJobMessage, execution_name, parse_job_message

        try:
            job = parse_job_message(body)
        except InvalidJobMessage as exc:
            return self.reject(body, message_id, exc.messages)
        job_id = execution_name(job)
        if isinstance(job, AnalyzeJob):
            bucket, key = _parse_s3_uri(job.s3_uri)
            if bucket != self.media_bucket:
                return self.reject_job(job_id, "analysis", {"s3_uri": job.s3_uri},
                                       [f"s3_uri must be in the media bucket {self.media_bucket}"])
            options = job.model_dump(mode="json", exclude_none=True, exclude={"type", "s3_uri", "client_token"})
            return self.start_analysis(job_id, bucket, key, options)
        request = job.model_dump(mode="json")
        return self._create_and_start(job_id, "generation", request, self.generation_arn,
                                      {"job_id": job_id, "request": request})

    # ------------------------------------------------------------ shared
    def _create_and_start(self, job_id: str, kind: str, request: dict, state_machine_arn: str,
                          execution_input: dict) -> Started:
        if not self.jobs.create(job_id, kind, request):
            existing = self.jobs.get(job_id) or {}
            if existing.get("execution_arn") or existing.get("status") == JobStatus.REJECTED:
                return Started(job_id, kind, duplicate=True)
            # Created by an earlier delivery whose start failed: start it now.
        started = self._start(state_machine_arn, job_id, execution_input)
        return Started(job_id, kind, duplicate=not started)

    def _start(self, state_machine_arn: str, name: str, execution_input: dict) -> bool:
        """Start the execution named after the job; False if it already exists."""
        try:
            arn = self.sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                                           input=json.dumps(execution_input))["executionArn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                logger.info("execution already started", extra={"job_id": name})
                return False
            raise
        self.jobs.update(name, JobStatus.RUNNING, execution_arn=arn)
        return True

    def reject(self, body: str, message_id: str, errors: list[str]) -> Started:
        return self.reject_job(stable_id("rejected", body), "message", {"message_id": message_id,
                                                                        "body": body[:2000]}, errors)

    def reject_job(self, job_id: str, kind: str, request: dict, errors: list[str]) -> Started:
        logger.warning("job rejected", extra={"job_id": job_id, "errors": errors})
        created = self.jobs.create(job_id, kind, request, status=JobStatus.REJECTED,
                                   error={"error": "InputRejected", "reason": "; ".join(errors), "details": errors})
        return Started(job_id, kind, duplicate=not created)


def upload_job_id(bucket: str, key: str, etag: str) -> str:
    """Same bucket, key and bytes → same job: a re-delivered notification or a
    re-upload of identical content is analysed (and paid for) once."""
    return stable_id("an", bucket, key, etag.strip('"'))


def _is_s3_event(payload: dict) -> bool:
    records = payload.get("Records")
    return isinstance(records, list) and all(isinstance(r, dict) and "s3" in r for r in records)


def _parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urllib.parse.urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _readable(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors()]
