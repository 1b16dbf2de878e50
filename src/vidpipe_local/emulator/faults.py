"""Fault injection: what goes wrong, on which endpoint, how many times.

A fault fires only once configured, on requests to its endpoint, for
``times`` requests (``None`` = every request). The first matching fault with
requests left fires; one fault per request. Endpoints: chat, models,
video.submit, video.list, video.status, video.download, video.cancel, or *
for all. Kinds:

    429 / 500 / 503 / any 3-digit status   that status (429 and 503 carry Retry-After: retry_after)
    latency     answer normally after delay_s real seconds
    timeout     hold the request hold_s real seconds, then answer (the client has given up)
    reset       drop the connection with a TCP RST, no answer
    malformed   same status, half the body (JSON that does not parse, an MP4 that does not decode)
    truncate    Content-Length of the whole body, half of it sent, connection closed
    job_fail    (video.submit) the job fails at its ETA with error ``message`` (and error code ``code``)
    job_capacity (video.submit) the job fails at its ETA: the provider is out of capacity
                (code ``capacity_exceeded``; a client may try another provider)
    job_policy  (video.submit) the job fails at its ETA: the content policy refused it
                (code ``content_policy_violation``; another provider would refuse too)
    job_stall   (video.submit) the job stays processing forever

With several providers on one server (``Emulator(providers=...)``), each
provider under ``/p/<name>/`` has its own faults (``emulator.provider(name).faults``,
``POST /p/<name>/_emulator/faults``).

Spec strings (CLI ``--fault`` and ``POST /_emulator/faults {"spec": ...}``)::

    ENDPOINT:KIND[:key=value,key=value...]
    chat:429:times=3,retry_after=2
    video.download:truncate
    video.submit:job_fail:message=content policy violation
    video.submit:job_capacity:times=always
    *:latency:delay_s=0.2,times=always
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

ENDPOINTS = frozenset(
    {"chat", "models", "video.submit", "video.list", "video.status", "video.download", "video.cancel", "*"}
)

# Kinds handled on the request itself; a 3-digit kind ("429", "500", "503",
# any other status) answers with that status instead.
REQUEST_KINDS = frozenset({"latency", "timeout", "reset", "malformed", "truncate"})
# Kinds that shape the job a video.submit creates.
JOB_KINDS = frozenset({"job_fail", "job_capacity", "job_policy", "job_stall"})
# What a job-failing kind makes the job's error say, unless the fault gives message / code.
JOB_FAILURES = {
    "job_fail": ("the emulator was told to fail this job", "video_generation_failed"),
    "job_capacity": ("the service is at capacity and cannot generate this video now; try again later",
                     "capacity_exceeded"),
    "job_policy": ("the request was rejected by the content policy (moderation)", "content_policy_violation"),
}


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    endpoint: str
    kind: str
    times: int | None = 1  # None: every request
    retry_after: float = 1.0  # 429 / 503: Retry-After seconds
    delay_s: float = 0.5  # latency: real seconds before answering
    hold_s: float = 5.0  # timeout: real seconds the request is held before answering
    message: str = ""  # job_fail / job_capacity / job_policy: the job's error ("" = the kind's own)
    code: str = ""  # the same: the error's code ("" = the kind's own)
    fired: int = 0

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise FaultSpecError(f"unknown endpoint {self.endpoint!r}; one of {sorted(ENDPOINTS)}")
        if not (self.is_status or self.kind in REQUEST_KINDS or self.kind in JOB_KINDS):
            kinds = sorted(REQUEST_KINDS | JOB_KINDS)
            raise FaultSpecError(f"unknown fault kind {self.kind!r}; one of {kinds} or an HTTP status like 503")
        if self.kind in JOB_KINDS and self.endpoint != "video.submit":
            raise FaultSpecError(f"{self.kind} applies to endpoint video.submit")
        if self.times is not None and self.times < 1:
            raise FaultSpecError("times must be >= 1 (or 'always')")
        if self.kind in JOB_FAILURES:
            message, code = JOB_FAILURES[self.kind]
            self.message, self.code = self.message or message, self.code or code

    @property
    def is_status(self) -> bool:
        return self.kind.isdigit() and len(self.kind) == 3

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_dict(self) -> dict:
        return asdict(self)


def parse_spec(spec: str) -> Fault:
    parts = spec.split(":", 2)
    if len(parts) < 2:
        raise FaultSpecError(f"fault spec {spec!r} is not ENDPOINT:KIND[:key=value,...]")
    options: dict[str, str] = {}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultSpecError(f"fault option {item!r} is not key=value")
            options[key.strip()] = value.strip()
    return from_dict({"endpoint": parts[0].strip(), "kind": parts[1].strip(), **options})


def from_dict(raw: dict) -> Fault:
    unknown = set(raw) - {"endpoint", "kind", "times", "retry_after", "delay_s", "hold_s", "message", "code"}
    if unknown:
        raise FaultSpecError(f"unknown fault options {sorted(unknown)}")
    values = dict(raw)
    try:
        if "times" in values:
            times = values["times"]
            values["times"] = None if times in (None, "always") else int(times)
        for key in ("retry_after", "delay_s", "hold_s"):
            if key in values:
                values[key] = float(values[key])
    except (TypeError, ValueError) as exc:
        raise FaultSpecError(f"bad fault option value: {exc}") from exc
    return Fault(**{k: str(v) if k in ("endpoint", "kind", "message", "code") else v for k, v in values.items()})


class Faults:
    """The configured faults of one emulator (thread safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, endpoint: str, kind: str, times: int | None = 1, **options) -> Fault:
        """E.g. ``add("chat", "429", times=3, retry_after=2)``; times=None: always."""
        return self._append(from_dict({"endpoint": endpoint, "kind": kind, "times": times, **options}))

    def add_spec(self, spec: str) -> Fault:
        return self._append(parse_spec(spec))

    def _append(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, endpoint: str) -> Fault | None:
        """The fault to fire on this request, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (endpoint, "*") and not fault.exhausted:
                    fault.fired += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._faults]
