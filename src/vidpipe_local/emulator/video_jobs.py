"""Async video jobs whose progress follows the emulator clock.

A job is queued for the first 10% of its ETA, processing until the ETA,
then completed (or failed, or, for a stalled job, processing forever with
progress stuck below 1). The video is rendered on first download and cached.
Jobs live in memory; ``Idempotency-Key`` maps to the job it created.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from vidpipe_local.emulator.errors import ApiError
from vidpipe_local.emulator.videogen import VideoSpec, render_mp4

QUEUED_SHARE = 0.1
STALLED_PROGRESS = 0.95
CANCELLED_ERROR = "cancelled by the client"


@dataclass(frozen=True)
class JobState:
    status: str  # queued | processing | completed | failed
    progress: float  # 0..1
    eta_s: float  # provider seconds left (0 once due)
    error: str | None
    completed_at: float | None
    error_code: str | None = None


@dataclass
class Job:
    id: str
    api: str  # "generic" | "openai": the wire shape it was submitted with
    model: str
    spec: VideoSpec
    created_at: float
    eta_s: float
    outcome: str = "complete"  # complete | fail | stall
    failure: str = ""
    failure_code: str = ""  # the failed job's error code (e.g. capacity_exceeded, content_policy_violation)
    cancelled_at: float | None = None
    download_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    _video: bytes | None = None
    _render_lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, now: float) -> JobState:
        at = min(now, self.cancelled_at) if self.cancelled_at is not None else now
        elapsed = max(0.0, at - self.created_at)
        progress = min(1.0, elapsed / self.eta_s) if self.eta_s > 0 else 1.0
        eta_left = max(0.0, self.eta_s - elapsed)
        if self.cancelled_at is not None:
            return JobState("failed", progress, 0.0, CANCELLED_ERROR, None)
        if progress < QUEUED_SHARE and progress < 1.0:
            return JobState("queued", 0.0, eta_left, None, None)
        if progress < 1.0:
            return JobState("processing", progress, eta_left, None, None)
        if self.outcome == "stall":
            return JobState("processing", STALLED_PROGRESS, 0.0, None, None)
        done_at = self.created_at + self.eta_s
        if self.outcome == "fail":
            return JobState("failed", 1.0, 0.0, self.failure, done_at, self.failure_code or None)
        return JobState("completed", 1.0, 0.0, None, done_at)

    def video(self) -> bytes:
        with self._render_lock:
            if self._video is None:
                self._video = render_mp4(self.spec)
            return self._video


class JobStore:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._by_idempotency_key: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def create(self, job: Job, idempotency_key: str | None) -> tuple[Job, bool]:
        """Store ``job``, or return the job this idempotency key already made."""
        with self._lock:
            if idempotency_key:
                existing = self._by_idempotency_key.get((job.api, idempotency_key))
                if existing in self._jobs:
                    return self._jobs[existing], False
                self._by_idempotency_key[(job.api, idempotency_key)] = job.id
            self._jobs[job.id] = job
            return job, True

    def get(self, api: str, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.api != api:
            raise ApiError(404, f"no video job {job_id!r}", code="not_found")
        return job

    def list(self, api: str) -> list[Job]:
        """The jobs submitted with wire shape ``api``, oldest first (ties in submission order)."""
        with self._lock:
            jobs = [job for job in self._jobs.values() if job.api == api]
        return sorted(jobs, key=lambda job: job.created_at)

    def delete(self, api: str, job_id: str) -> Job:
        job = self.get(api, job_id)
        with self._lock:
            self._jobs.pop(job_id, None)
        return job

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._by_idempotency_key.clear()


def new_job_id(api: str) -> str:
    return ("video_" if api == "openai" else "gen_") + secrets.token_hex(12)
