"""What a real provider would charge for the traffic the emulator served.

Served at ``GET /_emulator/bill`` (and ``Emulator.bill()``)::

    {"items": [...],
     "totals": {"chat": {"calls": N, "input_tokens": N, "output_tokens": N},
                "video": {"jobs": N, "seconds": S}}}

Rules (see docs/emulator-bill.md for the fault-by-fault table):

- A **chat completion** is billed when the emulator generated it, streamed
  (``stream: true``) or not: the whole answer is generated before the first
  chunk is sent, so a client that stops reading a stream early pays for all
  of it. Billed even if the body then reached the client truncated or malformed (faults
  ``malformed``, ``truncate``), or late (``latency``, ``timeout``: the
  answer is generated after the hold, whether or not the client still
  waits). It is not billed when the request was refused before generation:
  401, a status fault, the rate limit's 429, ``reset``, a 400 from
  validation (text-only model sent an image, bad body).
  Billed tokens = the ``usage`` the completion carried.
- A **video job** is billed once it has reached ``completed`` on the
  emulator clock at the moment the bill is read — whether or not anyone
  polled or downloaded it; a job that completes later appears on a later
  read. A job cancelled (generic cancel / DELETE, OpenAI DELETE) before it
  completed is never billed; a failed or stalled job is not billed; an
  ``Idempotency-Key`` replay is the same job (billed once). Deleting a job
  after it completed does not undo its charge. Billed seconds = the job's
  requested ``duration_s`` (OpenAI: ``seconds``).

Each item: ``kind`` (chat | video), ``id`` (the completion id / provider job
id), ``client_request_id`` (the ``X-Client-Request-Id`` header of the
request that was billed, or null), ``idempotency_key`` (video, or null),
``model``, ``input_tokens``, ``output_tokens`` (chat; null for video),
``seconds``, ``resolution`` ("WxH"), ``fps`` (video; null for chat) and
``at`` (emulator clock: when the completion was generated / the job
completed), and ``provider`` (the name of the provider under ``/p/<name>/``
that served it; absent for the root one). Items are ordered by ``at``. ``POST /_emulator/reset`` clears
the bill.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from vidpipe_local.emulator.video_jobs import Job


@dataclass(frozen=True)
class ChatCharge:
    id: str
    client_request_id: str | None
    model: str
    input_tokens: int
    output_tokens: int
    at: float
    provider: str | None = None


@dataclass(frozen=True)
class WatchedJob:
    job: Job
    client_request_id: str | None
    idempotency_key: str | None
    provider: str | None = None


class Bill:
    def __init__(self) -> None:
        self._chats: list[ChatCharge] = []
        self._jobs: list[WatchedJob] = []
        self._lock = threading.Lock()

    def charge_chat(self, charge: ChatCharge) -> None:
        with self._lock:
            self._chats.append(charge)

    def watch_job(self, job: Job, client_request_id: str | None, idempotency_key: str | None,
                  provider: str | None = None) -> None:
        """A job the emulator created; billed once it completes (see ``read``)."""
        with self._lock:
            self._jobs.append(WatchedJob(job, client_request_id, idempotency_key, provider))

    def clear(self) -> None:
        with self._lock:
            self._chats.clear()
            self._jobs.clear()

    def read(self, now: float, provider: str | None = "*") -> dict:
        """The bill; ``provider`` = a name (or None: the root provider) keeps that provider's items only."""
        with self._lock:
            chats, jobs = list(self._chats), list(self._jobs)
        if provider != "*":
            chats = [charge for charge in chats if charge.provider == provider]
            jobs = [watched for watched in jobs if watched.provider == provider]
        items = [_tagged(_chat_item(charge), charge.provider) for charge in chats]
        for watched in jobs:
            state = watched.job.state(now)
            if state.status == "completed":
                items.append(_tagged(_video_item(watched, state.completed_at), watched.provider))
        items.sort(key=lambda item: item["at"])  # stable: same-time items keep their order
        chat_items = [item for item in items if item["kind"] == "chat"]
        video_items = [item for item in items if item["kind"] == "video"]
        return {
            "items": items,
            "totals": {
                "chat": {
                    "calls": len(chat_items),
                    "input_tokens": sum(item["input_tokens"] for item in chat_items),
                    "output_tokens": sum(item["output_tokens"] for item in chat_items),
                },
                "video": {"jobs": len(video_items), "seconds": sum(item["seconds"] for item in video_items)},
            },
        }


def _chat_item(charge: ChatCharge) -> dict:
    return {
        "kind": "chat",
        "id": charge.id,
        "client_request_id": charge.client_request_id,
        "idempotency_key": None,
        "model": charge.model,
        "input_tokens": charge.input_tokens,
        "output_tokens": charge.output_tokens,
        "seconds": None,
        "resolution": None,
        "fps": None,
        "at": charge.at,
    }


def _video_item(watched: WatchedJob, completed_at: float) -> dict:
    job = watched.job
    return {
        "kind": "video",
        "id": job.id,
        "client_request_id": watched.client_request_id,
        "idempotency_key": watched.idempotency_key,
        "model": job.model,
        "input_tokens": None,
        "output_tokens": None,
        "seconds": job.spec.duration_s,
        "resolution": f"{job.spec.width}x{job.spec.height}",
        "fps": job.spec.fps,
        "at": completed_at,
    }


def _tagged(item: dict, provider: str | None) -> dict:
    return item if provider is None else {**item, "provider": provider}
