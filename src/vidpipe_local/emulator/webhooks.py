"""Completion webhooks, as a provider sends them: when a video job ends, a POST of
``video.completed`` / ``video.failed`` signed in the Standard Webhooks scheme to the URL
registered for that API (``urls["openai"]``, ``urls["generic"]``).

Payload (OpenAI's webhook event shape)::

    {"id": "evt_...", "object": "event", "created_at": <unix s>, "type": "video.completed",
     "data": {"id": "<video job id>"}}

Generic jobs carry their status object's fields in ``data`` too (status, video_url, error):
the generic API's webhook says where the clip is.

Headers: ``webhook-id`` (one per message; a retry or duplicate repeats it),
``webhook-timestamp`` (unix seconds of this attempt, emulator clock) and
``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(secret, "<id>.<timestamp>.<body>")),
the secret being the base64 after ``whsec_``. Signed here by hand from the specification
(not with the ``standardwebhooks`` library): an independent oracle for vidpipe's verification.

Modes (``Emulator(webhook_mode=...)``, ``POST /_emulator/webhooks {"mode": ...}``):

    on          send when the job ends
    off         never send (polling has to find out)
    delayed     send ``delay_s`` emulator seconds after the job ended
    duplicated  send, then send the very same message again (same webhook-id): a retry
    forged      send, signed with a secret that is not the registered one

A job's webhook is decided when its end is noticed (a background thread looks every
``poll_s`` real seconds), with the mode in force then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass

from vidpipe_local.clock import Clock

MODES = ("on", "off", "delayed", "duplicated", "forged")
EVENT_TYPES = {"completed": "video.completed", "failed": "video.failed"}
SEND_TIMEOUT_S = 10.0


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@dataclass
class Delivery:
    """One POST the emulator made (a duplicate is a second Delivery with the same webhook_id)."""

    webhook_id: str
    type: str
    job_id: str
    api: str
    url: str
    mode: str
    timestamp: int  # webhook-timestamp (emulator clock)
    headers: dict[str, str]
    body: str
    status: int | None = None  # the receiver's answer; None: no answer (connection failed)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Pending:
    due: float
    job: object
    type: str
    mode: str
    video: object  # the VideoApi that serves the job (its generic status view)


class WebhookSender:
    def __init__(self, clock: Clock, sites: Callable[[], list], *,
                 urls: dict[str, str] | None = None, secret: str | None = None, mode: str = "on",
                 delay_s: float = 60.0, poll_s: float = 0.005):
        self.clock, self._sites = clock, sites  # each site: .jobs (JobStore) and .video (VideoApi)
        self.urls: dict[str, str] = dict(urls or {})
        self.secret = secret
        self.mode = _mode(mode)
        self.delay_s = float(delay_s)
        self.poll_s = poll_s
        self._seen: set[str] = set()
        self._in_flight = 0  # deliveries due and not yet answered (the local stack's clock waits for them)
        self._pending: list[_Pending] = []
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- configuration ------------------------------------------------------

    def configure(self, *, urls: dict[str, str] | None = None, secret: str | None = None, mode: str | None = None,
                  delay_s: float | None = None) -> None:
        with self._lock:
            if urls is not None:
                self.urls = dict(urls)
            if secret is not None:
                self.secret = secret
            if mode is not None:
                self.mode = _mode(mode)
            if delay_s is not None:
                self.delay_s = float(delay_s)

    def settings(self) -> dict:
        with self._lock:
            return {"mode": self.mode, "delay_s": self.delay_s, "urls": dict(self.urls),
                    "secret_configured": bool(self.secret)}

    @property
    def enabled(self) -> bool:
        return bool(self.urls and self.secret)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._pending.clear()
            self._deliveries.clear()

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    # -- the loop -----------------------------------------------------------

    def _jobs(self) -> list[tuple[object, object]]:
        return [(job, site.video) for site in self._sites() for api in ("generic", "openai")
                for job in site.jobs.list(api)]

    def _run(self) -> None:
        while not self._stopping.wait(self.poll_s):
            if self.enabled:
                self.tick()

    def tick(self) -> None:
        """Notice jobs that ended; send what is due."""
        now = self.clock.now()
        for job, video in self._jobs():
            if job.id in self._seen:
                continue
            state = job.state(now)
            if state.status not in EVENT_TYPES:
                continue
            with self._lock:
                self._seen.add(job.id)
                mode = self.mode
                if mode == "off":
                    continue
                ended = state.completed_at if state.completed_at is not None else now
                due = max(now, ended + self.delay_s) if mode == "delayed" else now
                self._pending.append(_Pending(due, job, EVENT_TYPES[state.status], mode, video))
        with self._lock:
            due = [p for p in self._pending if p.due <= now]
            self._pending = [p for p in self._pending if p.due > now]
            self._in_flight += len(due)
        for pending in due:
            threading.Thread(target=self._deliver, args=(pending,), name="emulator-webhook-send", daemon=True).start()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def _deliver(self, pending: _Pending) -> None:
        try:
            self._deliver_once(pending)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _deliver_once(self, pending: _Pending) -> None:
        job = pending.job
        data = {"id": job.id}
        if job.api == "generic":
            view = pending.video.generic_view(job, self.clock.now())
            data |= {k: view.get(k) for k in ("status", "video_url", "error")}
        message_id = "wh_" + secrets.token_hex(16)
        body = json.dumps({"id": "evt_" + secrets.token_hex(16), "object": "event",
                           "created_at": int(self.clock.now()), "type": pending.type, "data": data}).encode()
        secret = new_secret() if pending.mode == "forged" else self.secret
        self.send(message_id, body, secret, job=job, type_=pending.type, mode=pending.mode)
        if pending.mode == "duplicated":
            self.send(message_id, body, secret, job=job, type_=pending.type, mode=pending.mode)

    def send(self, message_id: str, body: bytes, secret: str, *, job, type_: str, mode: str,
             timestamp: int | None = None) -> Delivery:
        """POST one signed message (a fresh timestamp, as every attempt has)."""
        url = self.urls.get(job.api, "")
        stamp = int(self.clock.now()) if timestamp is None else timestamp
        headers = {"content-type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(stamp), "webhook-signature": sign(secret, message_id, stamp, body),
                   "user-agent": "vidpipe-emulator-webhooks/1"}
        delivery = Delivery(webhook_id=message_id, type=type_, job_id=job.id, api=job.api, url=url, mode=mode,
                            timestamp=stamp, headers=headers, body=body.decode())
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as answer:  # noqa: S310 (configured URL)
                delivery.status = answer.status
        except urllib.error.HTTPError as exc:
            delivery.status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._deliveries.append(delivery)
        return delivery


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"webhook mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode
