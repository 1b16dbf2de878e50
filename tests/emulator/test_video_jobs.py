"""Async video jobs on both wire shapes, progressing with the VirtualClock
(nothing sleeps)."""

from __future__ import annotations

import pytest

SMALL = {"prompt": "a red ball rolls across a table", "duration_s": 1, "fps": 8, "resolution": "160x90"}


def _submit(client, **overrides) -> dict:
    response = client.post("/v1/video/generate", json={**SMALL, **overrides})
    assert response.status_code == 200, response.text
    return response.json()


def test_given_generic_job_when_clock_advances_then_queued_processing_completed(client, clock):
    job = _submit(client)
    assert (job["status"], job["eta_seconds"], job["video_url"]) == ("queued", 30.0, None)

    clock.advance(15)
    halfway = client.get(f"/v1/video/generations/{job['id']}").json()
    clock.advance(15)
    done = client.get(f"/v1/video/generations/{job['id']}").json()

    assert (halfway["status"], halfway["progress"], halfway["eta_seconds"]) == ("processing", 0.5, 15.0)
    assert (done["status"], done["progress"], done["error"]) == ("completed", 1.0, None)
    video = client.get(done["video_url"], headers={"Authorization": ""})
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"


def test_given_eta_header_or_body_field_when_submitted_then_that_eta_applies(client):
    by_header = client.post("/v1/video/generate", json=SMALL, headers={"X-Emulator-Eta-S": "120"}).json()
    by_body = _submit(client, x_emulator_eta_s=5)

    assert by_header["eta_seconds"] == 120.0
    assert by_body["eta_seconds"] == 5.0


def test_given_same_idempotency_key_when_submitted_twice_then_one_job(client, emulator, clock):
    first = client.post("/v1/video/generate", json=SMALL, headers={"Idempotency-Key": "job-123"})
    clock.advance(10)
    second = client.post("/v1/video/generate", json=SMALL, headers={"Idempotency-Key": "job-123"})
    other = client.post("/v1/video/generate", json=SMALL, headers={"Idempotency-Key": "job-456"})

    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["status"] == "processing"  # the same job, ten seconds on
    assert other.json()["id"] != first.json()["id"]
    assert len({c.job_id for c in emulator.calls if c.kind == "video.submit"}) == 2


@pytest.mark.parametrize(("method", "suffix"), [("POST", "/cancel"), ("DELETE", "")])
def test_given_running_job_when_cancelled_then_failed_and_no_video(client, clock, method, suffix):
    job = _submit(client)
    clock.advance(10)

    cancelled = client.request(method, f"/v1/video/generations/{job['id']}{suffix}").json()
    clock.advance(60)
    later = client.get(f"/v1/video/generations/{job['id']}").json()

    assert cancelled["status"] == later["status"] == "failed"
    assert later["error"] == "cancelled by the client"
    assert later["video_url"] is None


def test_given_video_not_ready_when_downloaded_then_409(client, emulator):
    job = _submit(client)
    token = emulator.jobs.get("generic", job["id"]).download_token

    response = client.get(f"/files/videos/{job['id']}.mp4", params={"token": token})

    assert response.status_code == 409


def test_given_wrong_download_token_when_downloaded_then_403(client, clock):
    job = _submit(client)
    clock.advance(30)

    response = client.get(f"/files/videos/{job['id']}.mp4", params={"token": "guess"})

    assert response.status_code == 403


def test_given_openai_job_when_clock_advances_then_video_object_progresses_and_content_downloads(client, clock):
    created = client.post("/v1/videos", json={"model": "sora-2", "prompt": "a city hyperlapse", "seconds": "1",
                                              "size": "160x90"}).json()
    clock.advance(21)
    running = client.get(f"/v1/videos/{created['id']}").json()
    clock.advance(9)
    done = client.get(f"/v1/videos/{created['id']}").json()
    content = client.get(f"/v1/videos/{created['id']}/content")

    assert (created["object"], created["status"], created["progress"]) == ("video", "queued", 0)
    assert (running["status"], running["progress"]) == ("in_progress", 70)
    assert (done["status"], done["progress"], done["seconds"], done["size"]) == ("completed", 100, "1", "160x90")
    assert done["completed_at"] == done["created_at"] + 30
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"


def test_given_openai_multipart_submit_when_created_then_same_video_object(client):
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (160, 90), (10, 20, 30)).save(png, format="PNG")
    response = client.post("/v1/videos", data={"model": "sora-2", "prompt": "waves", "seconds": "4", "size": "160x90"},
                           files={"input_reference": ("ref.png", png.getvalue(), "image/png")})
    junk = client.post("/v1/videos", data={"model": "sora-2", "prompt": "waves", "seconds": "4", "size": "160x90"},
                       files={"input_reference": ("ref.txt", b"not an image", "text/plain")})

    assert response.status_code == 200
    assert response.json()["seconds"] == "4"
    assert junk.status_code == 400  # an input_reference must be an image (tests/emulator/test_reference_image_emulator.py)


def test_given_openai_job_when_deleted_then_gone(client):
    created = client.post("/v1/videos", json={"prompt": "waves", "size": "160x90"}).json()

    deleted = client.delete(f"/v1/videos/{created['id']}")

    assert deleted.json() == {"id": created["id"], "object": "video.deleted", "deleted": True}
    assert client.get(f"/v1/videos/{created['id']}").status_code == 404


def test_given_job_fail_fault_when_eta_passes_then_failed_with_message(client, emulator, clock):
    emulator.faults.add("video.submit", "job_fail", message="content policy violation")
    job = _submit(client)
    clock.advance(10)
    running = client.get(f"/v1/video/generations/{job['id']}").json()
    clock.advance(20)

    failed = client.get(f"/v1/video/generations/{job['id']}").json()

    assert running["status"] == "processing"
    assert (failed["status"], failed["error"]) == ("failed", "content policy violation")
    assert _submit(client)["id"] != job["id"]  # the fault fired once


def test_given_job_stall_fault_when_long_past_eta_then_still_processing(client, emulator, clock):
    emulator.faults.add("video.submit", "job_stall")
    job = client.post("/v1/videos", json={"prompt": "waves", "size": "160x90"}).json()

    clock.advance(24 * 3600)
    status = client.get(f"/v1/videos/{job['id']}").json()

    assert (status["status"], status["progress"]) == ("in_progress", 95)


@pytest.mark.parametrize(
    ("field", "value"),
    [("resolution", "161x90"), ("resolution", "big"), ("mode", "reverse"), ("fps", 0), ("duration_s", "long"), ("prompt", "")],
)
def test_given_bad_parameter_when_submitted_then_400_names_it(client, field, value):
    response = client.post("/v1/video/generate", json={**SMALL, field: value})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == field


def test_given_unknown_job_when_polled_then_404(client):
    assert client.get("/v1/video/generations/gen_nope").status_code == 404
    assert client.get("/v1/videos/video_nope").status_code == 404
