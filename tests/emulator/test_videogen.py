"""The finished video is a real H.264 MP4 that OpenCV decodes, with the
requested size, fps and frame count, and a look that depends on the mode."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidpipe_local.emulator import video_jobs, videogen

MODES = ("normal", "slow_motion", "time_lapse", "hyperlapse")


def _generate(client, clock, tmp_path: Path, **request) -> Path:
    job = client.post("/v1/video/generate", json={"prompt": "a ball", "x_emulator_eta_s": 1, **request}).json()
    clock.advance(1)
    url = client.get(f"/v1/video/generations/{job['id']}").json()["video_url"]
    path = tmp_path / f"{job['id']}.mp4"
    path.write_bytes(client.get(url).content)
    return path


def _frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    capture.release()
    return frames


@pytest.mark.parametrize(("duration_s", "fps", "resolution"), [(2, 12, "160x90"), (1.5, 25, "320x180"), (1, 29.97, "96x160")])
def test_given_video_request_when_downloaded_then_opencv_decodes_requested_frames_size_and_fps(
    client, clock, tmp_path, duration_s, fps, resolution
):
    path = _generate(client, clock, tmp_path, duration_s=duration_s, fps=fps, resolution=resolution)

    capture = cv2.VideoCapture(str(path))
    width, height = (int(v) for v in resolution.split("x"))
    assert capture.isOpened()
    assert abs(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) - round(duration_s * fps)) <= 1
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (width, height)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(fps, rel=0.01)
    capture.release()
    assert abs(len(_frames(path)) - round(duration_s * fps)) <= 1


def test_given_video_when_probed_then_codec_is_h264(client, clock, tmp_path):
    path = _generate(client, clock, tmp_path, duration_s=1, fps=8, resolution="160x90")

    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_given_the_four_modes_when_generated_then_each_looks_different(client, clock, tmp_path):
    stats = {}
    for mode in MODES:
        frames = _frames(_generate(client, clock, tmp_path, mode=mode, duration_s=2, fps=12, resolution="160x90"))
        motion = np.mean([np.abs(a - b).mean() for a, b in zip(frames, frames[1:])])
        brightness_swing = np.std([f.mean() for f in frames])
        stats[mode] = (motion, brightness_swing)

    assert max(stats, key=lambda m: stats[m][0]) == "hyperlapse"  # the fastest pan
    assert max(stats, key=lambda m: stats[m][1]) == "time_lapse"  # day and night
    assert stats["slow_motion"][0] < stats["normal"][0]  # slow fall vs a ball crossing the frame
    first_frames = [_frames(_generate(client, clock, tmp_path, mode=m, duration_s=1, fps=4, resolution="160x90"))[0] for m in MODES]
    for i in range(len(MODES)):
        for j in range(i + 1, len(MODES)):
            assert np.abs(first_frames[i] - first_frames[j]).mean() > 5, (MODES[i], MODES[j])


def test_given_same_job_when_downloaded_twice_then_rendered_once(client, monkeypatch):
    renders = []
    monkeypatch.setattr(video_jobs, "render_mp4", lambda spec: renders.append(spec) or videogen.render_mp4(spec))
    job = client.post("/v1/video/generate", json={"prompt": "x", "duration_s": 1, "fps": 4, "resolution": "64x64",
                                                   "x_emulator_eta_s": 0}).json()
    url = client.get(f"/v1/video/generations/{job['id']}").json()["video_url"]

    assert client.get(url).content == client.get(url).content
    assert len(renders) == 1
