"""The record of every provider request the emulator answered (control
requests under /_emulator are not recorded)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

# The client's own id for one HTTP attempt; recorded on calls and bill items.
CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id"


@dataclass
class Call:
    kind: str  # chat | models | video.submit | video.list | video.status | video.download | video.cancel
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
    client_request_id: str | None = None  # the X-Client-Request-Id header, if sent
    # A video submit's reference image as received: sha256, bytes, width, height, mean_rgb, signature.
    reference_image: dict | None = None
    provider: str | None = None  # the provider under /p/<name>/ that answered; None: the root one

    def to_dict(self) -> dict:
        values = asdict(self)
        if values["provider"] is None:  # the root provider: calls read as before several were served
            del values["provider"]
        return values


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
