"""Follow a job on the local stack with a one-line progress display, and
copy its outputs to a folder."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vidpipe.jobs import json_safe


class Progress:
    """Prints the job's status and current state when they change (stderr)."""

    def __init__(self, session, label: str, stream=None):
        self.session, self.label = session, label
        self.stream = stream or sys.stderr
        self.last = ""
        self.started = time.monotonic()

    def __call__(self, job: dict | None) -> None:
        status = (job or {}).get("status", "QUEUED")
        step = self._current_state(job) if status == "RUNNING" else ""
        line = f"{self.label}: {status}{f' — {step}' if step else ''}"
        if line != self.last:
            self.stream.write(f"[{time.monotonic() - self.started:6.1f}s] {line}\n")
            self.stream.flush()
            self.last = line

    def _current_state(self, job: dict) -> str:
        arn = job.get("execution_arn")
        if not arn:
            return ""
        events = self.session.client("stepfunctions").get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=20)["events"]
        for event in events:
            details = event.get("stateEnteredEventDetails")
            if details:
                return details["name"]
        return ""


def download_outputs(session, keys: dict[str, str], out_dir: Path) -> list[Path]:
    """Copy S3 objects {filename: key} to out_dir; returns the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, key in keys.items():
        target = out_dir / filename
        session.client("s3").download_file(session.bucket, key, str(target))
        written.append(target)
    return written


def write_job_json(job: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(job), indent=2, sort_keys=True))
    return path


def failure_line(job: dict) -> str:
    error = job.get("error") or {}
    return f"job {job.get('job_id')} {job.get('status')}: {error.get('reason') or error.get('error') or 'no reason recorded'}"
