"""Reference images on the emulator's two video shapes: the image received is
recorded on the call (sha256, size, mean colour) and becomes the clip's first
frame; what no real API would take is refused with a 400 and never billed."""

from __future__ import annotations

import base64
import hashlib
import io

import cv2
import numpy as np
from PIL import Image

SMALL = {"prompt": "a bottle of olive oil on a table", "duration_s": 1, "fps": 8, "resolution": "160x90"}
ORANGE = (230, 120, 20)


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _first_frame_mean(mp4: bytes, tmp_path) -> np.ndarray:
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4)
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return bgr.reshape(-1, 3).mean(axis=0)[::-1]  # RGB


def _submit_calls(emulator) -> list:
    return [c for c in emulator.calls if c.kind == "video.submit"]


def test_given_a_generic_submit_with_an_image_then_the_call_records_it_and_the_first_frame_is_the_image(
        client, emulator, clock, tmp_path):
    image = _png((320, 180), ORANGE)
    job = client.post("/v1/video/generate", json={**SMALL, "image": base64.b64encode(image).decode(),
                                                  "image_type": "image/png"}).json()
    clock.advance(30)
    done = client.get(f"/v1/video/generations/{job['id']}").json()
    mp4 = client.get(done["video_url"], headers={"Authorization": ""}).content

    record = _submit_calls(emulator)[0].reference_image
    assert record["sha256"] == hashlib.sha256(image).hexdigest() and record["bytes"] == len(image)
    assert (record["width"], record["height"]) == (320, 180)
    assert np.allclose(record["mean_rgb"], ORANGE, atol=1)
    assert np.allclose(_first_frame_mean(mp4, tmp_path), ORANGE, atol=8)  # H.264 shifts colours a little


def test_given_an_openai_multipart_submit_with_input_reference_at_the_video_size_then_it_is_the_first_frame(
        client, emulator, clock, tmp_path):
    image = _png((160, 96), (20, 60, 200))
    response = client.post("/v1/videos", data={"model": "sora-2", "prompt": "a blue vase", "seconds": "1",
                                               "size": "160x96"},
                           files={"input_reference": ("ref.png", image, "image/png")})
    assert response.status_code == 200, response.text
    clock.advance(30)
    mp4 = client.get(f"/v1/videos/{response.json()['id']}/content").content

    assert _submit_calls(emulator)[0].reference_image["sha256"] == hashlib.sha256(image).hexdigest()
    assert np.allclose(_first_frame_mean(mp4, tmp_path), (20, 60, 200), atol=8)


def test_given_an_openai_input_reference_of_another_size_then_400_and_nothing_billed(client, emulator, clock):
    response = client.post("/v1/videos", data={"model": "sora-2", "prompt": "a vase", "seconds": "1",
                                               "size": "160x96"},
                           files={"input_reference": ("ref.png", _png((320, 180), ORANGE), "image/png")})
    clock.advance(60)

    assert response.status_code == 400 and "must match the requested size 160x96" in response.text
    assert emulator.bill()["items"] == []


def test_given_an_image_field_that_is_not_an_image_then_400_and_nothing_billed(client, emulator, clock):
    response = client.post("/v1/video/generate", json={**SMALL, "image": base64.b64encode(b"not a png").decode()})
    clock.advance(60)

    assert response.status_code == 400 and response.json()["error"]["param"] == "image"
    assert emulator.bill()["items"] == []


def test_given_no_image_then_the_clip_and_the_call_are_as_before(client, emulator):
    client.post("/v1/video/generate", json=SMALL)

    assert _submit_calls(emulator)[0].reference_image is None
