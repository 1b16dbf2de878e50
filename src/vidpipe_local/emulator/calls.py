"""The record of every provider request the emulator answered (control
requests under /_emulator are not recorded)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field


@dataclass
class Call:
    kind: str  # chat | video.submit | video.status | video.download | video.cancel | unknown
    method: str
    path: str
    timestamp: float  # emulator clock
    status: int = 0
    model: str | None = None
    image_signatures: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    job_id: str | None = None
    fault: str | None = None  # the fault kind that fired, if any

    def to_dict(self) -> dict:
        return asdict(self)


class CallLog:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def append(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
