"""Follow a job on the local stack, and copy its outputs to a folder.

The display (rich, on stderr, only when stderr is a terminal) shows the job's
status, the state its execution is in and, for an analysis, how many segments
are extracted and chunks analyzed. Step Functions history does not show the
Map iterations (moto runs the segment Map as a Distributed Map, whose
iterations are not in the parent's history; it also ignores ``reverseOrder``),
so segment and chunk progress is read where the steps leave their results:
one manifest per extracted segment, one result per analyzed chunk, at the
keys vidpipe.analysis.keys derives from the job id. State changes are logged
(the command's log file) whether or not a display is shown.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from vidpipe.analysis import keys
from vidpipe.jobs import json_safe

log = logging.getLogger("vidpipe_local.progress")

DETAIL_EVERY_S = 0.5  # history and S3 are read at most this often


class AnalysisProgress:
    """What the steps of one analysis have left in S3 so far."""

    def __init__(self, session, job_id: str):
        self.session, self.job_id = session, job_id
        self.segments: int | None = None  # known once PlanAnalysis has run
        self.chunks_per_manifest: dict[str, int] = {}
        self.chunks_done = 0

    def read(self, history: list[dict]) -> None:
        if self.segments is None:
            for event in history:
                details = event.get("stateExitedEventDetails") or {}
                if details.get("name") == "PlanAnalysis":
                    self.segments = len(json.loads(details["output"]).get("plan", {}).get("segments", []))
        s3, bucket = self.session.client("s3"), self.session.bucket
        prefix = f"work/{self.job_id}/"
        manifests = _list(s3, bucket, keys.manifest_key(self.job_id, 0).rsplit("/", 1)[0] + "/")
        for key in manifests:
            if key not in self.chunks_per_manifest:
                manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                per_chunk = max(1, int(manifest.get("frames_per_chunk") or 1))
                self.chunks_per_manifest[key] = -(-len(manifest.get("frames", [])) // per_chunk)
        self.chunks_done = len(_list(s3, bucket, prefix + "chunks/"))

    @property
    def segments_done(self) -> int:
        return len(self.chunks_per_manifest)

    @property
    def chunks_known(self) -> int:
        return sum(self.chunks_per_manifest.values())


def _list(s3, bucket: str, prefix: str) -> list[str]:
    found, token = [], None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
        found += [o["Key"] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return found


def current_state(history: list[dict]) -> str:
    """The state entered last. Events are ordered by ``id`` whatever order they
    were returned in."""
    entered = [e for e in history if e.get("stateEnteredEventDetails")]
    if not entered:
        return ""
    return max(entered, key=lambda e: e["id"])["stateEnteredEventDetails"]["name"]


class Progress:
    """Called with the job record on every poll; use as a context manager."""

    def __init__(self, session, kind: str, job_id: str, stream=None):
        self.session, self.kind, self.job_id = session, kind, job_id
        self.stream = stream or sys.stderr
        self.analysis = AnalysisProgress(session, job_id) if kind == "analysis" else None
        self.last_line = ""
        self.last_detail = 0.0
        self.state = ""
        self._display = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> Progress:
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bars, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._display = Bars(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                                 console=Console(file=self.stream), transient=True)
            self._display.start()
            self._tasks["job"] = self._display.add_task(f"{self.kind} {self.job_id}: QUEUED", total=None, count="")
        return self

    def __exit__(self, *exc) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def __call__(self, job: dict | None) -> None:
        status = (job or {}).get("status", "QUEUED")
        now = time.monotonic()
        if job and status == "RUNNING" and job.get("execution_arn") and now - self.last_detail >= DETAIL_EVERY_S:
            self.last_detail = now
            self._read_details(job["execution_arn"])
        line = f"{self.kind} {self.job_id}: {status}" + (f" — {self.state}" if status == "RUNNING" and self.state
                                                          else "")
        if self.analysis is not None and self.analysis.segments:
            line += (f" ({self.analysis.segments_done}/{self.analysis.segments} segments extracted, "
                     f"{self.analysis.chunks_done}/{self.analysis.chunks_known or '?'} chunks analyzed)")
        if line != self.last_line:
            log.info(line)
            self.last_line = line
        self._draw(status)

    def _read_details(self, execution_arn: str) -> None:
        try:
            history = self.session.client("stepfunctions").get_execution_history(
                executionArn=execution_arn, reverseOrder=True, maxResults=1000)["events"]
            self.state = current_state(history) or self.state
            if self.analysis is not None:
                self.analysis.read(history)
        except Exception as exc:  # a display problem must never fail the job it follows
            log.warning("progress details unavailable: %s", exc)

    def _draw(self, status: str) -> None:
        if self._display is None:
            return
        state = f" — {self.state}" if status == "RUNNING" and self.state else ""
        self._display.update(self._tasks["job"], description=f"{self.kind} {self.job_id}: {status}{state}")
        a = self.analysis
        if a is None or not a.segments:
            return
        if "segments" not in self._tasks:
            self._tasks["segments"] = self._display.add_task("  segments extracted", total=a.segments, count="")
            self._tasks["chunks"] = self._display.add_task("  chunks analyzed", total=None, count="")
        self._display.update(self._tasks["segments"], completed=a.segments_done,
                             count=f"{a.segments_done}/{a.segments}")
        done_extracting = a.segments_done >= a.segments
        chunks_total = a.chunks_known if done_extracting else None
        self._display.update(self._tasks["chunks"], completed=a.chunks_done, total=chunks_total,
                             count=f"{a.chunks_done}/{chunks_total if chunks_total is not None else '?'}")


def download_outputs(session, keys_by_name: dict[str, str], out_dir: Path, optional: tuple[str, ...] = ()) \
        -> list[Path]:
    """Copy S3 objects {filename: key} to out_dir; returns the written paths. Names in
    ``optional`` are skipped when their object does not exist."""
    from botocore.exceptions import ClientError

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, key in keys_by_name.items():
        target = out_dir / filename
        try:
            session.client("s3").download_file(session.bucket, key, str(target))
        except ClientError as exc:
            if filename in optional and exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                continue
            raise
        written.append(target)
    return written


def write_job_json(job: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(job), indent=2, sort_keys=True))
    return path


def failure_line(job: dict) -> str:
    error = job.get("error") or {}
    return f"job {job.get('job_id')} {job.get('status')}: {error.get('reason') or error.get('error') or 'no reason recorded'}"

