"""Turn SQS records into jobs: upload notifications → analysis, job messages →
generation (or analysis of an object already in the media bucket).

Every job gets a deterministic id that is also its execution name, so a
duplicated notification or a redelivered message starts nothing new.

No message vanishes. One that can never be valid becomes a REJECTED job (the
sender can read why; the record is bounded whatever was sent) and is not
retried. A transient AWS failure raises, so the record is retried and ends in
the DLQ after the redrive limit. A message that is at fault but cannot even be
recorded is sent to its queue's DLQ here, with a ``reason`` message attribute.
The only message ignored is the ``s3:TestEvent`` S3 sends to the ingest queue
when notifications are configured (logged and counted).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic_core
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidpipe.analysis.models import AnalysisOptions
from vidpipe.errors import AwsTransient
from vidpipe.input_fields import quoted, readable_error
from vidpipe.jobs import MAX_REASON_CHARS, JobStatus, JobStore, cut, rejection, stable_id
from vidpipe.observability import emit_metric, logger

OPTIONS_METADATA_KEY = "vidpipe-options"  # x-amz-meta-vidpipe-options: JSON analysis options
SCRIPTS_PREFIX = "scripts/"  # [PRODUCTION] scripts dropped here start productions (template.yaml notification)
SCRIPT_SUFFIXES = ("txt", "md", "json")
UPLOADS_PREFIX = "uploads/"  # the media bucket's notification filter (template.yaml): only these are analysed
QUOTED_BODY_CHARS = 200  # how much of a rejected message its record keeps
MAX_KEY_CHARS = 1024  # S3's own limit on a key

# ClientError codes that mean "this message cannot be stored or started", not
# "AWS is unwell": retrying cannot help, so the message goes to the DLQ at once.
MESSAGE_FAULT_CODES = frozenset({"ValidationException", "InvalidExecutionInput", "InvalidName"})


@dataclass
class Started:
    job_id: str
    kind: str
    duplicate: bool


@dataclass(frozen=True)
class SourceQueue:
    """A queue StartJobs reads, keyed by its ARN: where its dead letters go."""

    dead_letter_url: str
    ingest: bool = False  # the media bucket's notification queue


class _TokenTaken(Exception):
    """The job id (from a client_token) already names a job with other content."""

    def __init__(self, job_id: str):
        super().__init__(job_id)
        self.job_id = job_id


# ---------------------------------------------------------------- S3 notification records


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _S3Bucket(_Loose):
    name: str = Field(min_length=3, max_length=63)


class _S3Object(_Loose):
    key: str = Field(min_length=1, max_length=3 * MAX_KEY_CHARS)  # URL-encoded: up to 3 chars a byte
    eTag: str = Field(default="", max_length=128)
    versionId: str | None = Field(default=None, max_length=1024)  # set when the bucket keeps versions


class _S3Entity(_Loose):
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(_Loose):
    eventName: str = Field(max_length=128)
    s3: _S3Entity


class StartJobs:
    def __init__(self, jobs: JobStore, sfn, s3, analysis_arn: str, generation_arn: str, media_bucket: str,
                 sqs=None, queues: dict[str, SourceQueue] | None = None,
                 announce: Callable[[dict], Any] | None = None, production_arn: str = ""):
        self.production_arn = production_arn  # [PRODUCTION] produce messages and scripts/ drops
        self.jobs, self.sfn, self.s3, self.sqs = jobs, sfn, s3, sqs
        self.analysis_arn, self.generation_arn, self.media_bucket = analysis_arn, generation_arn, media_bucket
        self.queues = queues or {}
        # vidpipe.completion.announce, bound to its deps: a REJECTED job is terminal and announced.
        self.announce = announce

    # ------------------------------------------------------------ one SQS record
    def handle_record(self, body: str, message_id: str, queue_arn: str) -> list[Started]:
        """Start, reject or dead-letter one SQS record.

        Raises for a transient AWS failure, when the queue's DLQ is unknown or when
        sending to it fails: SQS then retries the record and, past the redrive
        limit, moves it to the DLQ itself. Any other error comes from this
        message's data (an item DynamoDB refuses, a bug it triggers) and would
        fail every retry alike, so the message goes to the DLQ now, with why."""
        queue = self.queues.get(queue_arn)
        try:
            return self.handle_body(body, message_id, ingest=bool(queue and queue.ingest))
        except Exception as exc:
            if _transient(exc) or queue is None or self.sqs is None:
                raise
            self.dead_letter(queue, body, message_id, cut(f"{type(exc).__name__}: {exc}", MAX_REASON_CHARS))
            return []

    def dead_letter(self, queue: SourceQueue, body: str, message_id: str, reason: str) -> None:
        logger.error("message dead-lettered: it could not be recorded", extra={"message_id": message_id,
                                                                              "reason": reason})
        self.sqs.send_message(QueueUrl=queue.dead_letter_url, MessageBody=body, MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason},
            "source_message_id": {"DataType": "String", "StringValue": message_id},
        })
        emit_metric("IntakeDeadLettered", MetricUnit.Count, 1)

    def handle_body(self, body: str, message_id: str, ingest: bool = False) -> list[Started]:
        try:
            # pydantic's parser limits nesting: 100k-deep JSON is a ValueError here,
            # where json.loads would raise RecursionError.
            payload = pydantic_core.from_json(body)
        except ValueError:
            payload = None  # parse_job_message explains what is wrong with it
        if isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent":
            if ingest:
                logger.info("ignoring the S3 test event sent when notifications are configured")
                emit_metric("S3TestEventIgnored", MetricUnit.Count, 1)
                return []
            return [self.reject(body, message_id, ["Event: s3:TestEvent is sent by S3 to the ingest queue; "
                                                   "the jobs queue takes job messages"])]
        if isinstance(payload, dict) and "Records" in payload:
            return self.start_notification(payload["Records"], body, message_id)
        return [self.start_message(body, message_id)]

    # ------------------------------------------------------------ uploads
    def start_notification(self, records, body: str, message_id: str) -> list[Started]:
        """One job per record: started, or REJECTED saying what is wrong with it."""
        if not isinstance(records, list) or not records:
            return [self.reject(body, message_id, ["Records: an S3 notification needs at least one record"])]
        return [self._start_record(record, index, body, message_id) for index, record in enumerate(records)]

    def _start_record(self, record, index: int, body: str, message_id: str) -> Started:
        def refuse(*errors: str) -> Started:
            return self.reject(body, message_id, list(errors), part=str(index))

        try:
            event = _S3Record.model_validate(record)
        except ValidationError as exc:
            return refuse(*(readable_error(e, ("Records", index, *e["loc"])) for e in exc.errors()))
        bucket = event.s3.bucket.name
        # S3 URL-encodes keys in notifications, with '+' for spaces.
        key = urllib.parse.unquote_plus(event.s3.object.key)
        if not event.eventName.startswith("ObjectCreated:"):
            return refuse(f"Records.{index}.eventName: only ObjectCreated events start an analysis, "
                          f"not {quoted(event.eventName)}")
        if bucket == self.media_bucket and key.startswith(SCRIPTS_PREFIX):
            return self.start_script(bucket, key, event.s3.object.eTag)
        problem = self._not_an_upload(bucket, key)
        if problem:
            return refuse(f"Records.{index}.s3: {problem}")
        return self.start_upload(bucket, key, event.s3.object.eTag, event.s3.object.versionId)

    def start_upload(self, bucket: str, key: str, etag: str, version_id: str | None = None) -> Started:
        # Refusals (object gone, options invalid) are recorded under the id without options.
        refused_id = upload_job_id(bucket, key, etag)
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return self.reject_job(refused_id, "analysis", {"bucket": bucket, "key": key},
                                       [f"s3://{bucket}/{key} no longer exists"])
            raise
        try:
            options = AnalysisOptions.model_validate_json(head.get("Metadata", {}).get(OPTIONS_METADATA_KEY) or "{}")
        except ValidationError as exc:
            return self.reject_job(refused_id, "analysis", {"bucket": bucket, "key": key}, _options_errors(exc))
        # The analysis reads the version the notification named (or, when it names none, the one HEAD saw):
        # an overwrite of the key during the job changes nothing it reads (vidpipe/s3_file.py).
        return self.start_analysis(upload_job_id(bucket, key, etag, options), bucket, key, options,
                                   version_id=version_id or head.get("VersionId"))

    def start_analysis(self, job_id: str, bucket: str, key: str, options: AnalysisOptions,
                       content: str | None = None, version_id: str | None = None,
                       callback_url: str | None = None) -> Started:
        request = {"bucket": bucket, "key": key, "options": options.model_dump(mode="json", exclude_none=True)}
        # version_id None (a job message): ProbeVideo pins the version there when it runs.
        execution_input = {"job_id": job_id, **request, "version_id": version_id}
        if callback_url:  # on the record, for the completion announcement (vidpipe.completion)
            request["callback_url"] = callback_url
        return self._create_and_start(job_id, "analysis", request, self.analysis_arn, execution_input, content)

    def _not_an_upload(self, bucket: str, key: str) -> str | None:
        """Why s3://bucket/key may not be analysed, or None."""
        if bucket != self.media_bucket:
            return f"bucket {quoted(bucket)} is not the media bucket {self.media_bucket}"
        if not key.startswith(UPLOADS_PREFIX):
            return f"key {quoted(key)} is not under {UPLOADS_PREFIX}"
        if len(key.encode()) > MAX_KEY_CHARS:
            return f"key is longer than S3's {MAX_KEY_CHARS} bytes"
        return None

    # ------------------------------------------------------------ job messages
    def start_message(self, body: str, message_id: str) -> Started:
        from vidpipe.generation.messages import AnalyzeJob, InvalidJobMessage, execution_name, parse_job_message

        try:
            job = parse_job_message(body)
        except InvalidJobMessage as exc:
            return self.reject(body, message_id, exc.messages)
        job_id, content = execution_name(job), content_digest(job)
        try:
            if isinstance(job, AnalyzeJob):
                bucket, key = job.bucket_and_key
                problem = self._not_an_upload(bucket, key)
                if problem:
                    refused = {"message_id": message_id, "s3_uri": cut(job.s3_uri, QUOTED_BODY_CHARS),
                               "callback_url": job.callback_url}
                    return self.reject_job(job_id, "analysis", {k: v for k, v in refused.items() if v},
                                           [f"s3_uri: {problem}"], content)
                return self.start_analysis(job_id, bucket, key, job.options, content, callback_url=job.callback_url)
            if job.type == "produce":
                return self.start_production(job_id, job, content)
            request = job.model_dump(mode="json")
            problem = self._reference_image_problem(job)  # [REFIMG]
            if problem:
                return self.reject_job(job_id, "generation", request, [f"reference_image: {problem}"], content)
            return self._create_and_start(job_id, "generation", request, self.generation_arn,
                                          {"job_id": job_id, "request": request}, content)
        except _TokenTaken as taken:
            return self.reject(body, message_id, [
                f"client_token: {quoted(job.client_token)} already names job {taken.job_id}, whose content differs; "
                "a new job needs a new token"])

    def _reference_image_problem(self, job) -> str | None:
        """The reference image's URL form (media bucket, references/ prefix; https host's addresses).
        The image itself is fetched and checked by SubmitGeneration (vidpipe.reference_image)."""
        if getattr(job, "reference_image", None) is None:
            return None
        from vidpipe.config import get_settings
        from vidpipe.net.download_guard import DownloadPolicy
        from vidpipe.reference_image import url_problem

        return url_problem(job.reference_image, media_bucket=self.media_bucket,
                           policy=DownloadPolicy.from_settings(get_settings()))

    # ------------------------------------------------------------ productions [PRODUCTION]
    def start_production(self, job_id: str, job, content: str | None) -> Started:
        """A produce job: its script (inline, or an object under scripts/ of the media bucket)
        is read by the Storyboard step; here only where it is is checked."""
        request = job.model_dump(mode="json")
        problems = [f"characters.{i}.reference_image: {problem}" for i, c in enumerate(job.characters)
                    if c.reference_image and (problem := self._image_url_problem(c.reference_image))]
        if problems:  # the shots' generate jobs would be refused one by one, after the storyboard was paid
            return self.reject_job(job_id, "production", {**request, "script": cut(job.script, QUOTED_BODY_CHARS)},
                                   problems, content)
        where = job.script_uri
        if where and (where[0] != self.media_bucket or not where[1].startswith(SCRIPTS_PREFIX)):
            return self.reject_job(job_id, "production", {**request, "script": cut(job.script, QUOTED_BODY_CHARS)},
                                   [f"script: {job.script[:200]} is not under s3://{self.media_bucket}/{SCRIPTS_PREFIX}"],
                                   content)
        return self._create_and_start(job_id, "production", request, self.production_arn,
                                      {"job_id": job_id, "request": request}, content)

    def _image_url_problem(self, url: str) -> str | None:
        from vidpipe.config import get_settings
        from vidpipe.net.download_guard import DownloadPolicy
        from vidpipe.reference_image import url_problem

        return url_problem(url, media_bucket=self.media_bucket, policy=DownloadPolicy.from_settings(get_settings()))

    def start_script(self, bucket: str, key: str, etag: str) -> Started:
        """A script dropped under scripts/: .txt / .md is the script (options, as produce fields, in the
        ``vidpipe-options`` metadata); .json is a produce message (``type`` may be omitted)."""
        from vidpipe.generation.messages import InvalidJobMessage, parse_job_message

        job_id = stable_id("pro", bucket, key, etag.strip('"'))
        where = {"bucket": bucket, "key": key}
        suffix = key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
        if suffix not in SCRIPT_SUFFIXES:
            return self.reject_job(job_id, "production", where, [
                f"key {quoted(key)}: a script under {SCRIPTS_PREFIX} must end in .txt, .md or .json"])
        try:
            if suffix == "json":
                body = self.s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-262143")["Body"].read()
                message = pydantic_core.from_json(body)
                if not isinstance(message, dict):
                    raise ValueError("not a JSON object")
                message = {"type": "produce", **message}
            else:
                head = self.s3.head_object(Bucket=bucket, Key=key)
                options = pydantic_core.from_json(head.get("Metadata", {}).get(OPTIONS_METADATA_KEY) or "{}")
                if not isinstance(options, dict):
                    raise ValueError(f"{OPTIONS_METADATA_KEY} metadata is not a JSON object")
                stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0][:200] or "Untitled"
                message = {"title": stem, **options, "type": "produce", "script": f"s3://{bucket}/{key}"}
            job = parse_job_message(json.dumps(message))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return self.reject_job(job_id, "production", where, [f"s3://{bucket}/{key} no longer exists"])
            raise
        except (ValueError, InvalidJobMessage) as exc:
            errors = exc.messages if isinstance(exc, InvalidJobMessage) else [f"s3://{bucket}/{key}: {exc}"]
            return self.reject_job(job_id, "production", where, errors)
        return self.start_production(job_id, job, content_digest(job))

    # ------------------------------------------------------------ shared
    def _create_and_start(self, job_id: str, kind: str, request: dict, state_machine_arn: str,
                          execution_input: dict, content: str | None = None) -> Started:
        if not self._create(job_id, kind, request, content):
            existing = self.jobs.get(job_id) or {}
            if existing.get("execution_arn") or existing.get("status") == JobStatus.REJECTED:
                return Started(job_id, kind, duplicate=True)
            # Created by an earlier delivery whose start failed: start it now.
        started = self._start(state_machine_arn, job_id, execution_input)
        return Started(job_id, kind, duplicate=not started)

    def _create(self, job_id: str, kind: str, request: dict, content: str | None, **record) -> bool:
        """Create the job; False for the same content again (a duplicate). Raises
        _TokenTaken when the id already names a job with other content."""
        extra = {"content": content} if content else {}
        if self.jobs.create(job_id, kind, request, **extra, **record):
            return True
        if content:
            owner = (self.jobs.get(job_id) or {}).get("content")
            # Jobs recorded before contents were kept have none: same token, same job.
            if owner is not None and owner != content:
                raise _TokenTaken(job_id)
        return False

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

    def reject(self, body: str, message_id: str, errors: list[str], part: str | None = None) -> Started:
        """REJECT a message (or one ``part`` of it) that names no job of its own."""
        job_id = stable_id("rejected", body) if part is None else stable_id("rejected", body, part)
        request = {"message_id": message_id, "body": cut(body, QUOTED_BODY_CHARS)}
        if part is not None:
            request["part"] = part
        return self.reject_job(job_id, "message", request, errors)

    def reject_job(self, job_id: str, kind: str, request: dict, errors: list[str],
                   content: str | None = None) -> Started:
        error = rejection(errors)
        logger.warning("job rejected", extra={"job_id": job_id, "reason": error["reason"]})
        created = self._create(job_id, kind, request, content, status=JobStatus.REJECTED, error=error)
        self._announce_rejection(job_id)
        return Started(job_id, kind, duplicate=not created)

    def _announce_rejection(self, job_id: str) -> None:
        """Announce the REJECTED job, also on a redelivery (the first announcement may be
        what failed: EventBridge consumers dedupe on the event's ``id``)."""
        if self.announce is None:
            return
        record = self.jobs.get(job_id)
        if record and record.get("status") == JobStatus.REJECTED:
            self.announce(record)


def upload_job_id(bucket: str, key: str, etag: str, options: AnalysisOptions | dict | None = None) -> str:
    """Same bucket, key, bytes and options → same job: a re-delivered notification or a
    re-upload of identical content with the same options is analysed (and paid for)
    once; other options are another job. No options (or only omitted ones) keep the
    id an upload without metadata always had."""
    if isinstance(options, dict):
        options = AnalysisOptions.model_validate(options)
    chosen = options.model_dump(mode="json", exclude_none=True) if options is not None else {}
    if not chosen:
        return stable_id("an", bucket, key, etag.strip('"'))
    return stable_id("an", bucket, key, etag.strip('"'), json.dumps(chosen, sort_keys=True, separators=(",", ":")))


def content_digest(job) -> str:
    """What a job message asks for, whatever its spelling: a reused client_token
    with another digest is another request."""
    from vidpipe.generation.messages import canonical_json

    return hashlib.sha256(canonical_json(job).encode()).hexdigest()


def _options_errors(exc: ValidationError) -> list[str]:
    subject = f"{OPTIONS_METADATA_KEY} metadata"
    return [readable_error(e, ("options", *e["loc"]) if e["loc"] else (), subject=subject) for e in exc.errors()]


def _transient(exc: Exception) -> bool:
    """AWS being unwell (retry the record), as opposed to this message being unstorable."""
    if isinstance(exc, AwsTransient):  # e.g. the rejection's announcement (vidpipe.completion)
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") not in MESSAGE_FAULT_CODES
    return isinstance(exc, BotoCoreError)
