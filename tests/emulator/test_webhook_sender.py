"""The emulator's completion webhooks: OpenAI's event shape, signed by hand from the Standard
Webhooks spec (checked here with the reference ``standardwebhooks`` library), one per job
end, in each mode (on, off, delayed, duplicated, forged), settable over the admin endpoint."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from vidpipe_local.emulator.webhooks import new_secret


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it gets and answers 204."""

    def __init__(self):
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                receiver.event.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def wait(self, count: int, timeout_s: float = 5.0) -> list:
        deadline = threading.Event()
        for _ in range(int(timeout_s / 0.01)):
            if len(self.received) >= count:
                return self.received
            deadline.wait(0.01)
        raise AssertionError(f"got {len(self.received)} webhooks, wanted {count}")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


@pytest.fixture
def secret() -> str:
    return new_secret()


def wire(emulator, receiver, secret, mode="on", **options):
    emulator.webhooks.configure(urls={"openai": receiver.url + "/openai", "generic": receiver.url + "/generic"},
                                secret=secret, mode=mode, **options)


def delivered(emulator, count: int, timeout_s: float = 5.0) -> list:
    """The emulator's delivery records once there are ``count`` of them (or what there is at the timeout)."""
    done = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if len(emulator.webhooks.deliveries()) >= count:
            break
        done.wait(0.01)
    return emulator.webhooks.deliveries()


def verified(secret: str, headers: dict, body: bytes, clock) -> dict:
    """The reference library's verification, at the emulator clock's time."""
    import standardwebhooks.webhooks as lib

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(clock.now(), tz=timezone.utc)

    original, lib.datetime = lib.datetime, Frozen
    try:
        return Webhook(secret).verify(body, headers)
    finally:
        lib.datetime = original


def test_given_an_openai_job_when_it_completes_then_one_signed_video_completed_arrives(
        emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret)
    video = client.post("/v1/videos", json={"model": "sora-2", "prompt": "a red kite", "seconds": "4",
                                            "size": "160x96"}).json()
    clock.advance(31)

    ((path, headers, body),) = receiver.wait(1)
    payload = verified(secret, headers, body, clock)
    assert path == "/openai"
    assert payload["type"] == "video.completed" and payload["data"] == {"id": video["id"]}
    assert payload["object"] == "event" and payload["id"].startswith("evt_")
    assert headers["webhook-id"].startswith("wh_") and headers["webhook-timestamp"] == str(int(clock.now()))
    # The sender records a delivery once it has read the receiver's answer, just after the receiver got it.
    assert [d.status for d in delivered(emulator, 1)] == [204]


def test_given_a_generic_job_that_fails_when_it_ends_then_video_failed_carries_its_status_object(
        emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret)
    emulator.faults.add_spec("video.submit:job_fail:message=no capacity")
    job = client.post("/v1/video/generate", json={"prompt": "a red kite", "duration_s": 1}).json()
    clock.advance(31)

    ((path, headers, body),) = receiver.wait(1)
    payload = verified(secret, headers, body, clock)
    assert path == "/generic" and payload["type"] == "video.failed"
    assert payload["data"]["id"] == job["id"] and payload["data"]["status"] == "failed"
    assert payload["data"]["error"] == "no capacity" and payload["data"]["video_url"] is None


def test_given_mode_off_when_jobs_end_then_nothing_is_sent(emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret, mode="off")
    client.post("/v1/videos", json={"prompt": "a red kite", "seconds": "4", "size": "160x96"})
    clock.advance(31)
    emulator.webhooks.tick()

    assert receiver.received == [] and emulator.webhooks.deliveries() == []


def test_given_mode_forged_when_a_job_ends_then_the_signature_does_not_verify(
        emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret, mode="forged")
    client.post("/v1/videos", json={"prompt": "a red kite", "seconds": "4", "size": "160x96"})
    clock.advance(31)

    ((_, headers, body),) = receiver.wait(1)
    with pytest.raises(WebhookVerificationError):
        verified(secret, headers, body, clock)


def test_given_mode_duplicated_when_a_job_ends_then_the_same_message_comes_twice(
        emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret, mode="duplicated")
    client.post("/v1/videos", json={"prompt": "a red kite", "seconds": "4", "size": "160x96"})
    clock.advance(31)

    (_, first, body1), (_, second, body2) = receiver.wait(2)
    assert first["webhook-id"] == second["webhook-id"] and body1 == body2
    assert verified(secret, second, body2, clock)["type"] == "video.completed"


def test_given_mode_delayed_when_a_job_ends_then_it_is_sent_delay_s_later_signed_at_sending(
        emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret, mode="delayed", delay_s=120)
    submitted = clock.now()
    client.post("/v1/videos", json={"prompt": "a red kite", "seconds": "4", "size": "160x96"})
    clock.advance(31)
    emulator.webhooks.tick()
    assert receiver.received == []

    clock.advance(120)
    ((_, headers, body),) = receiver.wait(1)
    assert int(headers["webhook-timestamp"]) >= int(submitted) + 30 + 120  # the job ended at 30 s
    assert verified(secret, headers, body, clock)["type"] == "video.completed"


def test_given_the_admin_endpoint_when_the_mode_is_posted_then_it_applies_and_bad_settings_are_refused(
        emulator, anonymous):
    answer = anonymous.post("/_emulator/webhooks", json={"mode": "forged", "delay_s": 5})
    assert answer.status_code == 200
    assert answer.json()["settings"]["mode"] == "forged" and emulator.webhooks.mode == "forged"
    assert anonymous.post("/_emulator/webhooks", json={"mode": "sometimes"}).status_code == 400
    assert anonymous.post("/_emulator/webhooks", json={"colour": "red"}).status_code == 400
    assert anonymous.get("/_emulator/webhooks").json()["deliveries"] == []


def test_given_a_job_still_running_when_checked_then_no_webhook_goes_out(emulator, client, clock, receiver, secret):
    wire(emulator, receiver, secret)
    client.post("/v1/videos", json={"prompt": "a red kite", "seconds": "4", "size": "160x96"})
    clock.advance(10)
    emulator.webhooks.tick()

    assert receiver.received == []
    assert json.loads(json.dumps(emulator.webhooks.settings()))["secret_configured"] is True
