"""`vidpipe generate --image` and a JSONL catalog with reference images, the way a
user runs them: the local file is uploaded under references/ and the clip starts
from it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vidpipe_local.cli import main

pytestmark = pytest.mark.e2e

TEAL = (20, 170, 160)


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """No `vidpipe local up` of the developer's may leak into these tests."""
    monkeypatch.setenv("VIDPIPE_STATE_DIR", str(tmp_path / "state"))


def write_photo(path: Path, colour=TEAL, size=(480, 480)) -> Path:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=95)
    path.write_bytes(out.getvalue())
    return path


def first_frame_rgb(video: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return bgr.reshape(-1, 3).mean(axis=0)[::-1]


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_generate_with_image_then_the_file_is_uploaded_under_references_and_the_clip_starts_from_it(tmp_path):
    image = write_photo(tmp_path / "product.jpg")
    out = tmp_path / "gen"

    assert main(["generate", "--prompt", "a teal ceramic mug turning slowly", "--image", str(image),
                 "--duration", "1", "--fps", "12", "--resolution", "160x96", "--out", str(out)]) == 0

    job = json.loads((out / "job.json").read_text())
    assert job["status"] == "SUCCEEDED"
    reference = job["request"]["reference_image"]
    assert reference.startswith("s3://") and "/references/" in reference and reference.endswith("/product.jpg")
    assert np.allclose(first_frame_rgb(out / "video.mp4"), TEAL, atol=10)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_jsonl_catalog_with_local_images_then_each_line_runs_and_a_bad_image_is_named(tmp_path, capsys):
    write_photo(tmp_path / "red.jpg", colour=(200, 30, 30))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    clip = {"type": "generate", "duration_s": 1, "fps": 12, "resolution": "160x96"}
    lines = [{**clip, "prompt": "a red kettle, slow motion", "reference_image": "red.jpg"},
             {**clip, "prompt": "a broken photo", "reference_image": "broken.jpg"}]
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    assert main(["generate", "--file", str(catalog), "--out", str(tmp_path / "out")]) == 1  # one line failed

    printed = capsys.readouterr().out
    assert "reference_image: not a decodable image" in printed and "broken.jpg" in printed
    [done] = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*/job.json")]
    assert done["status"] == "SUCCEEDED" and done["request"]["reference_image"].endswith("/red.jpg")
    assert np.allclose(first_frame_rgb(next((tmp_path / "out").glob("*/video.mp4"))), (200, 30, 30), atol=12)
