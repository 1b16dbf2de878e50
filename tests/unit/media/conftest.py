"""Synthetic videos for the media tests, written once per session (320×180, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe_local import samples


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def cuts_and_fade(media_dir) -> samples.GroundTruth:
    """12 s at 15 fps: hard cuts at 3.0 and 9.0 s, a fade to black centred on 6.0 s,
    a static shot (6-9 s) and a fast pan (9-12 s); a keyframe every second."""
    return samples.sample_with_cuts_and_fade(media_dir / "cuts_and_fade.mp4")


@pytest.fixture(scope="session")
def dissolve(media_dir) -> samples.GroundTruth:
    """8 s: a 1.2 s cross-dissolve centred on 4.0 s."""
    return samples.sample_with_dissolve(media_dir / "dissolve.mp4")


@pytest.fixture(scope="session")
def short_gop(media_dir) -> samples.GroundTruth:
    """4 s at 15 fps, two shots, a keyframe every 10 frames (0.667 s)."""
    shots = [samples.ShotSpec(duration_s=2.0, seed=5), samples.ShotSpec(duration_s=2.0, seed=6)]
    return samples.make_video(media_dir / "short_gop.mp4", shots, fps=15, gop_size=10)


@pytest.fixture(scope="session")
def portrait_phone_clip(media_dir) -> samples.GroundTruth:
    """Stored 320×180 with a display matrix that turns it 90° (a phone held upright)."""
    shots = [samples.ShotSpec(duration_s=1.0, seed=8)]
    return samples.make_video(media_dir / "portrait.mp4", shots, fps=15, rotation=90)


@pytest.fixture(scope="session")
def cuts_off_the_detector_grid(media_dir) -> samples.GroundTruth:
    """12 s at 30 fps like ``cuts_and_fade``, but with the hard cuts on frames 91 and 272 and the fade
    centred on frame 181: none of them on the uniform detector's grid of one frame in 3."""
    shots = [
        samples.ShotSpec(duration_s=91 / 30, seed=11),
        samples.ShotSpec(duration_s=3.0, seed=22),
        samples.ShotSpec(duration_s=91 / 30, seed=33, motion=(0, 0)),
        samples.ShotSpec(duration_s=88 / 30, seed=44, motion=(9.0, 0.0)),
    ]
    transitions = [samples.Transition(), samples.Transition(kind="fade_black", duration_s=1.0), samples.Transition()]
    path = media_dir / "cuts_off_grid_30fps.mp4"
    return samples.make_video(path, shots, fps=30, transitions=transitions, gop_size=30)
