"""Reference images on the local stack: the image reaches the provider in its
own shape (the emulator's call record shows its sha256 and colour), the stored
clip starts from it, and a bad one ends the job with its reason before any
video call (nothing on the emulator's bill, the money invariants hold)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from spend_invariants import assert_money_invariants

from vidpipe import reference_image as ref
from vidpipe.generation.messages import execution_name, parse_job_message

pytestmark = pytest.mark.integration

ORANGE = (230, 120, 20)
SWEEP_EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "sweep_reservations.json").read_text())


def photo(size=(640, 480), colour=ORANGE) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def put_reference(stack, name: str, data: bytes) -> str:
    key = f"references/test/{name}"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
    return f"s3://{stack.bucket}/{key}"


def send(stack, **fields) -> str:
    body = json.dumps({"type": "generate", "prompt": "a bottle of olive oil turning on a table", "duration_s": 1,
                       "fps": 12, "resolution": "160x96", **fields})
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def submits(stack) -> list:
    return [call for call in stack.emulator.calls if call.kind == "video.submit"]


def first_frame_rgb(stack, job_id: str, tmp_path: Path) -> np.ndarray:
    path = tmp_path / f"{job_id}.mp4"
    path.write_bytes(stack.s3.get_object(Bucket=stack.bucket, Key=f"outputs/{job_id}/video.mp4")["Body"].read())
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return bgr.reshape(-1, 3).mean(axis=0)[::-1]


def settled(stack) -> None:
    result, errored = stack.invoke("SweepReservationsFunction", SWEEP_EVENT)
    assert not errored, result
    assert_money_invariants(stack)


@pytest.mark.parametrize(("provider", "model", "fps"), [("generic", None, 12), ("openai", "sora-2", 24)])
def test_given_a_generate_job_with_a_reference_image_then_the_provider_gets_it_and_the_clip_starts_from_it(
        local_stack, tmp_path, provider, model, fps):
    s = local_stack
    original = photo()
    uri = put_reference(s, "bottle.png", original)
    fields = {"provider": provider, "fps": fps, "reference_image": uri, **({"model": model} if model else {})}
    job_id = send(s, **fields)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    [submit] = submits(s)
    sent = ref.prepare(ref.check(uri, original), (160, 96))  # fitted to the job's resolution
    assert submit.reference_image["sha256"] == hashlib.sha256(sent.data).hexdigest()
    assert (submit.reference_image["width"], submit.reference_image["height"]) == (160, 96)
    assert np.allclose(submit.reference_image["mean_rgb"], ORANGE, atol=2)
    assert np.allclose(first_frame_rgb(s, job_id, tmp_path), ORANGE, atol=10)
    settled(s)


def test_given_the_same_prompt_with_another_image_then_it_is_another_job_and_another_provider_job(local_stack):
    s = local_stack
    first = send(s, reference_image=put_reference(s, "a.png", photo(colour=(10, 200, 10))))
    second = send(s, reference_image=put_reference(s, "b.png", photo(colour=(10, 10, 200))))

    assert first != second
    assert s.wait_for_job(first)["status"] == s.wait_for_job(second)["status"] == "SUCCEEDED"
    assert len({call.reference_image["sha256"] for call in submits(s)}) == 2
    settled(s)


@pytest.mark.parametrize(("data", "reason"), [
    (b"GIF89a? no, a text file named like an image", "not a decodable image"),
    (photo(size=(4100, 16)), "4100x16 px; each side must be at most 4096 px"),
    (b"\x89PNG" + bytes(20 * 1024 * 1024), "larger than the 20.0 MB limit"),
])
def test_given_a_bad_reference_image_then_the_job_is_rejected_with_the_reason_and_nothing_is_paid(
        local_stack, data, reason):
    s = local_stack
    job_id = send(s, reference_image=put_reference(s, "bad.png", data))

    job = s.wait_for_job(job_id)

    assert job["status"] == "REJECTED"
    assert job["error"]["error"] == "ReferenceImageRejected" and reason in job["error"]["reason"]
    assert submits(s) == [] and s.emulator.bill()["items"] == []
    settled(s)


@pytest.mark.parametrize(("url", "reason"), [
    ("https://10.20.30.40/bottle.png", "10.20.30.40 is a private address"),
    ("https://169.254.169.254/latest/meta-data/iam", "the instance metadata service"),
])
def test_given_a_reference_url_at_a_private_address_then_the_job_is_rejected_at_intake(local_stack, url, reason):
    s = local_stack
    job_id = send(s, reference_image=url)

    job = s.wait_for_job(job_id)

    assert job["status"] == "REJECTED" and reason in job["error"]["reason"]
    assert s.emulator.calls == [] and s.emulator.bill()["items"] == []
    settled(s)


class _Redirects(BaseHTTPRequestHandler):
    """An image host (on 127.0.0.1, allowlisted locally) whose URL redirects to a private address."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(302)
        self.send_header("Location", "http://10.0.0.9/internal.png")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def redirecting_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirects)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_given_a_reference_url_that_redirects_to_a_private_address_then_the_job_is_rejected_before_any_video_call(
        local_stack, redirecting_host):
    s = local_stack
    job_id = send(s, reference_image=f"{redirecting_host}/bottle.png")

    job = s.wait_for_job(job_id)

    assert job["status"] == "REJECTED" and job["error"]["error"] == "ReferenceImageRejected"
    assert "refused 10.0.0.9: 10.0.0.9 is a private address" in job["error"]["reason"]
    assert submits(s) == [] and s.emulator.bill()["items"] == []
    settled(s)
