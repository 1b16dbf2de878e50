"""Deterministic synthetic videos (and broken inputs) for tests, benchmarks and the demo.

Videos are H.264 / yuv420p written with PyAV's libx264 (OpenCV cannot encode
H.264). Each shot is a seeded texture (coarse colour blobs, fine grain, a few
shapes) panned a few pixels per frame, so shots differ at a glance (perceptual
hashes do not merge them) while frames inside a shot move like real footage.

Timeline: shot boundaries are the running sum of the shot durations. A
transition is centred on its boundary: ``fade_black`` fades the last half of
the outgoing shot to black and the first half of the incoming one up from
black; ``dissolve`` blends the two shots over the interval. Keyframes sit
exactly every ``gop_size`` frames (x264 scene-cut keyframes are disabled), so
tests can compare keyframe sampling with the GOP.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
from pydantic import BaseModel

Size = tuple[int, int]  # (width, height)


class ShotSpec(BaseModel):
    duration_s: float
    seed: int
    motion: tuple[float, float] = (2.0, 1.0)  # texture pan, pixels per frame; (0, 0) = static
    grain: float = 18.0  # fine texture (moves with the picture): shows motion, costs bits in every keyframe
    label: str = ""  # drawn large in the frame when set (demo)
    # Real-footage traps inside the shot (times from the shot's start). None of them is a cut.
    crossing: tuple[float, float] | None = None  # (start, duration): a large dark object crosses the frame
    flash_s: float | None = None  # two frames of white light (a photographer's flash)


class Transition(BaseModel):
    kind: Literal["cut", "fade_black", "dissolve"] = "cut"
    duration_s: float = 0.0


class TransitionTruth(BaseModel):
    kind: Literal["cut", "fade_black", "dissolve"]
    start_s: float
    end_s: float

    @property
    def mid_s(self) -> float:
        return (self.start_s + self.end_s) / 2


class ShotTruth(BaseModel):
    start_s: float
    end_s: float
    static: bool


class GroundTruth(BaseModel):
    path: str
    fps: float
    size: Size
    frame_count: int
    duration_s: float
    gop_size: int
    shots: list[ShotTruth]
    transitions: list[TransitionTruth]

    @property
    def hard_cuts_s(self) -> list[float]:
        return [t.start_s for t in self.transitions if t.kind == "cut"]

    @property
    def keyframe_times_s(self) -> list[float]:
        return [i / self.fps for i in range(0, self.frame_count, self.gop_size)]


def make_video(
    path: str | os.PathLike,
    shots: Sequence[ShotSpec],
    fps: int = 15,
    size: Size = (320, 180),
    transitions: Sequence[Transition] | None = None,
    gop_size: int | None = None,
    preset: str = "veryfast",
    sensor_noise: float = 0.0,
    crf: int = 23,
    faststart: bool = False,
    rotation: int = 0,
) -> GroundTruth:
    """Write the shots (joined by ``transitions``, default hard cuts) and return the truth.

    ``sensor_noise`` (a standard deviation in 0-255 levels) adds noise that
    changes every frame, as a camera sensor does, so inter frames cost bits the
    way they do in real footage. ``faststart`` puts the index (moov) before the
    data. ``rotation`` (degrees counter-clockwise) goes into the display matrix,
    as phones record portrait video.
    """
    transitions = list(transitions or [Transition() for _ in shots[1:]])
    if len(transitions) != len(shots) - 1:
        raise ValueError("need exactly one transition between consecutive shots")
    gop_size = gop_size or 2 * fps
    boundaries = np.cumsum([0.0] + [s.duration_s for s in shots])
    frame_count = round(boundaries[-1] * fps)
    textures = [_ShotTexture(spec, size, fps) for spec in shots]
    noise = _NoiseFields(size, sensor_noise) if sensor_noise else None

    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream(
            "libx264",
            rate=Fraction(fps),
            options={
                "preset": preset,
                "crf": str(crf),
                "g": str(gop_size),
                "keyint_min": str(gop_size),
                "sc_threshold": "0",
            },
        )
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frame_count):
            image = _compose(index / fps, index, fps, boundaries, textures, transitions)
            if noise:
                image = noise.add(image, index)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())

    truths = [
        TransitionTruth(kind=t.kind, start_s=b - t.duration_s / 2, end_s=b + t.duration_s / 2)
        for t, b in zip(transitions, boundaries[1:-1], strict=True)
    ]
    return GroundTruth(
        path=str(path),
        fps=fps,
        size=size,
        frame_count=frame_count,
        duration_s=frame_count / fps,
        gop_size=gop_size,
        shots=[
            ShotTruth(start_s=float(a), end_s=float(b), static=spec.motion == (0, 0))
            for spec, a, b in zip(shots, boundaries[:-1], boundaries[1:], strict=True)
        ],
        transitions=truths,
    )


def sample_with_cuts_and_fade(path: str | os.PathLike, size: Size = (320, 180), fps: int = 15) -> GroundTruth:
    """~12 s, 4 shots: hard cut at 3.0 s, fade to black centred on 6.0 s, hard cut at 9.0 s.

    Shot 3 (6–9 s) is perfectly static; shot 4 (9–12 s) pans fast so its
    content keeps changing. GOP 1 s.
    """
    shots = [
        ShotSpec(duration_s=3.0, seed=11),
        ShotSpec(duration_s=3.0, seed=22),
        ShotSpec(duration_s=3.0, seed=33, motion=(0, 0)),
        ShotSpec(duration_s=3.0, seed=44, motion=(9.0, 0.0)),
    ]
    transitions = [Transition(), Transition(kind="fade_black", duration_s=1.0), Transition()]
    return make_video(path, shots, fps=fps, size=size, transitions=transitions, gop_size=fps)


def sample_with_dissolve(path: str | os.PathLike, size: Size = (320, 180), fps: int = 15) -> GroundTruth:
    """~8 s, 2 shots joined by a 1.2 s cross-dissolve centred on 4.0 s."""
    shots = [ShotSpec(duration_s=4.0, seed=55), ShotSpec(duration_s=4.0, seed=66)]
    return make_video(path, shots, fps=fps, size=size, transitions=[Transition(kind="dissolve", duration_s=1.2)])


def long_video(
    path: str | os.PathLike,
    seconds: float,
    size: Size = (640, 360),
    fps: int = 15,
    shot_s: float = 10.0,
    preset: str = "ultrafast",
    sensor_noise: float = 0.0,
    crf: int = 23,
) -> GroundTruth:
    """A long clip of ``shot_s`` shots joined by hard cuts (benchmarks).

    ``ultrafast`` writes quickly but has no B-frames or CABAC, so it also decodes
    faster than typical footage; ``veryfast`` with ``sensor_noise=3, crf=18``
    gives a bitstream shaped like camera footage (~10 Mbit/s at 720p30, most
    bits in inter frames, keyframes ~10 % of the bytes at a 2 s GOP).
    """
    count = max(1, math.ceil(seconds / shot_s))
    shots = [
        ShotSpec(duration_s=min(shot_s, seconds - i * shot_s), seed=100 + i % 7, grain=6.0) for i in range(count)
    ]
    return make_video(path, shots, fps=fps, size=size, preset=preset, sensor_noise=sensor_noise, crf=crf)


def hour_of_shots(
    path: str | os.PathLike,
    seconds: float = 3600.0,
    shot_s: float = 20.0,
    first_shot_s: float = 10.0,
    size: Size = (160, 90),
    fps: int = 5,
) -> GroundTruth:
    """A cheap long clip for scale runs: tiny frames, low fps, a hard cut every ``shot_s``.

    The first shot is ``first_shot_s`` long, so by default the cuts fall at 10 s, 30 s,
    50 s, … and never on a multiple of 60 s (the template's segment length): every cut is
    inside a segment, where a detector can see it. Shots cycle through 12 seeded textures
    (neighbours always differ), grain and motion are low and x264 runs ``ultrafast`` at
    CRF 32: an hour at 160×90, 5 fps is 18,000 frames and ~12 MB, written in ~20 s.
    """
    durations = [min(first_shot_s, seconds)]
    while sum(durations) < seconds - 1e-9:
        durations.append(min(shot_s, seconds - sum(durations)))
    shots = [ShotSpec(duration_s=d, seed=300 + i % 12, grain=6.0, motion=(1.0, 0.0)) for i, d in enumerate(durations)]
    return make_video(path, shots, fps=fps, size=size, preset="ultrafast", gop_size=2 * fps, crf=32)


def demo_video(path: str | os.PathLike) -> GroundTruth:
    """~20 s, 640×360, five labelled shots: cuts, a fade to black and a dissolve."""
    shots = [
        ShotSpec(duration_s=4.0, seed=1, label="HARBOUR"),
        ShotSpec(duration_s=4.0, seed=2, label="FOREST", motion=(1.0, 0.0)),
        ShotSpec(duration_s=4.0, seed=3, label="CITY NIGHT", motion=(0, 0)),
        ShotSpec(duration_s=4.0, seed=4, label="DESERT", motion=(6.0, 2.0)),
        ShotSpec(duration_s=4.0, seed=5, label="SNOW"),
    ]
    transitions = [
        Transition(),
        Transition(kind="fade_black", duration_s=1.0),
        Transition(),
        Transition(kind="dissolve", duration_s=1.0),
    ]
    return make_video(path, shots, fps=24, size=(640, 360), transitions=transitions)


def sample_with_traps(path: str | os.PathLike, size: Size = (640, 360), fps: int = 25) -> GroundTruth:
    """60 s of footage that looks like cuts to a naive detector but holds only 8 transitions.

    Traps inside shots (none is a cut): a large object crossing the frame in 1.2 s (shot 1) and in
    0.5 s (shot 6), a 2-frame white flash (shots 2 and 5), a fast continuous pan (shot 3, 28 px a
    frame, and shot 6). Transitions: hard cuts, a 1 s fade through black (26 s), a 1 s dissolve
    (34 s), a 3-frame shot (42.0-42.12 s) and a 3-frame last shot (59.88-60 s). GOP 2 s.
    """
    frame = 1 / fps
    shots = [
        ShotSpec(duration_s=8.0, seed=201, crossing=(3.0, 1.2)),
        ShotSpec(duration_s=8.0, seed=202, flash_s=4.0),
        ShotSpec(duration_s=10.0, seed=203, motion=(28.0, 3.0)),
        ShotSpec(duration_s=8.0, seed=204),
        ShotSpec(duration_s=8.0, seed=205, flash_s=3.0, motion=(0, 0)),
        ShotSpec(duration_s=3 * frame, seed=206),
        ShotSpec(duration_s=8.0 - 3 * frame, seed=207, motion=(14.0, 2.0), crossing=(2.0, 0.5)),
        ShotSpec(duration_s=10.0 - 3 * frame, seed=208),
        ShotSpec(duration_s=3 * frame, seed=209),
    ]
    transitions = [Transition(), Transition(), Transition(kind="fade_black", duration_s=1.0),
                   Transition(kind="dissolve", duration_s=1.0), Transition(), Transition(), Transition(), Transition()]
    return make_video(path, shots, fps=fps, size=size, transitions=transitions, gop_size=2 * fps)


# --- broken inputs -------------------------------------------------------------


def zero_byte_file(path: str | os.PathLike) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def random_bytes_file(path: str | os.PathLike, size: int = 64 * 1024, seed: int = 7) -> Path:
    Path(path).write_bytes(np.random.default_rng(seed).bytes(size))
    return Path(path)


def truncated_mp4(path: str | os.PathLike, keep_fraction: float = 0.5, faststart: bool = False) -> Path:
    """A real MP4 cut short. By default the moov box (written last) is lost; with
    ``faststart`` the index survives and only frame data is missing."""
    whole = Path(path).with_suffix(".whole.mp4")
    make_video(whole, [ShotSpec(duration_s=2.0, seed=9)], faststart=faststart)
    data = whole.read_bytes()
    whole.unlink()
    Path(path).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(path)


def audio_only_mp4(path: str | os.PathLike, seconds: float = 2.0, rate: int = 44100) -> Path:
    """An MP4 holding one AAC sine-tone track and no video."""
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return Path(path)


def still_image_as_mp4(path: str | os.PathLike, image_format: Literal[".png", ".jpg"] = ".png") -> Path:
    """A PNG/JPEG image saved under a video name."""
    image = _ShotTexture(ShotSpec(duration_s=1, seed=3), (320, 180)).frame(0)
    Path(path).write_bytes(cv2.imencode(image_format, image)[1].tobytes())
    return Path(path)


def single_frame_mp4(path: str | os.PathLike) -> GroundTruth:
    """A valid H.264 MP4 that holds one frame: a still, not a video."""
    return make_video(path, [ShotSpec(duration_s=1 / 15, seed=4)])


# --- rendering -------------------------------------------------------------------


class _ShotTexture:
    """A seeded texture larger than the frame; frame k is a crop panned by k × motion."""

    def __init__(self, spec: ShotSpec, size: Size, fps: float = 15):
        self.spec, self.fps = spec, fps
        self.width, self.height = size
        self.margin = max(size) // 2
        rng = np.random.default_rng(spec.seed)
        tex_w, tex_h = self.width + 2 * self.margin, self.height + 2 * self.margin

        # Coarse blobs give each shot its own layout; the palette its own colours.
        coarse = cv2.resize(rng.random((6, 8, 3), dtype=np.float32), (tex_w, tex_h), interpolation=cv2.INTER_CUBIC)
        palette = rng.uniform(30, 225, size=(2, 3)).astype(np.float32)
        texture = palette[0] + (palette[1] - palette[0]) * np.clip(coarse, 0, 1)
        texture += rng.normal(0, spec.grain, size=(tex_h, tex_w, 1)).astype(np.float32)
        texture = np.clip(texture, 0, 255).astype(np.uint8)
        for _ in range(6):
            centre = (int(rng.integers(0, tex_w)), int(rng.integers(0, tex_h)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.circle(texture, centre, int(rng.integers(tex_h // 12, tex_h // 5)), colour, -1, cv2.LINE_AA)
        self.texture = texture

    def frame(self, k: int) -> np.ndarray:
        dx, dy = self.spec.motion
        x = _bounce(k * dx, 2 * self.margin)
        y = _bounce(k * dy, 2 * self.margin)
        image = self.texture[y : y + self.height, x : x + self.width].copy()
        if self.spec.label:
            scale = self.height / 180
            cv2.putText(image, self.spec.label, (int(20 * scale), int(100 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                        1.6 * scale, (255, 255, 255), max(1, round(4 * scale)), cv2.LINE_AA)
        t = k / self.fps
        if self.spec.crossing is not None:
            start, duration = self.spec.crossing
            if start <= t < start + duration:
                # A van passing close to the camera: a dark box 80 % of the frame high and 60 % wide with a
                # lighter window band, sliding from off the left edge to off the right edge.
                box_w, box_h = int(0.6 * self.width), int(0.8 * self.height)
                x = int(-box_w + (t - start) / duration * (self.width + box_w))
                y = self.height - box_h
                x0, x1 = max(0, x), min(self.width, x + box_w)
                if x1 > x0:
                    image[y:, x0:x1] = (40, 45, 50)
                    image[y + box_h // 6 : y + box_h // 3, x0:x1] = (150, 140, 120)
        if self.spec.flash_s is not None and 0 <= k - round(self.spec.flash_s * self.fps) < 2:
            image = np.full_like(image, 250)
        return image


class _NoiseFields:
    """Per-frame sensor noise, cycled from a few precomputed fields (drawing 1M normals a frame is slow)."""

    def __init__(self, size: Size, sigma: float, count: int = 8):
        rng = np.random.default_rng(0)
        width, height = size
        self.fields = [rng.normal(0, sigma, (height, width, 1)).astype(np.int16) for _ in range(count)]

    def add(self, image: np.ndarray, index: int) -> np.ndarray:
        return np.clip(image + self.fields[index % len(self.fields)], 0, 255).astype(np.uint8)


def _bounce(offset: float, span: int) -> int:
    """Pan back and forth inside [0, span] instead of wrapping (no jump that looks like a cut)."""
    position = int(round(offset)) % (2 * span)
    return position if position <= span else 2 * span - position


def _compose(t: float, index: int, fps: int, boundaries, textures, transitions) -> np.ndarray:
    shot = min(int(np.searchsorted(boundaries, t, side="right")) - 1, len(textures) - 1)
    image = textures[shot].frame(index - round(boundaries[shot] * fps))
    # The transition around the boundary nearest t (before or after), if t is inside it.
    for neighbour in (shot - 1, shot):
        if not 0 <= neighbour < len(transitions):
            continue
        transition, boundary = transitions[neighbour], boundaries[neighbour + 1]
        half = transition.duration_s / 2
        if transition.kind == "cut" or not boundary - half <= t < boundary + half:
            continue
        if transition.kind == "fade_black":
            gain = abs(t - boundary) / half
            return (image.astype(np.float32) * gain).astype(np.uint8)
        outgoing = textures[neighbour].frame(index - round(boundaries[neighbour] * fps))
        incoming = textures[neighbour + 1].frame(index - round(boundaries[neighbour + 1] * fps))
        alpha = (t - (boundary - half)) / transition.duration_s
        return cv2.addWeighted(outgoing, 1 - alpha, incoming, alpha, 0)
    return image
