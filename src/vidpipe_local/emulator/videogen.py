"""Render the "generated" video: a real H.264 MP4 (PyAV + libx264) with the
requested duration, fps and size (frame count = round(duration * fps)).

Each mode has its own look, so a pipeline (and a test) can tell them apart:

- normal: a ball crossing a calm gradient once;
- slow_motion: a ball falling slowly under gravity, little change per frame;
- time_lapse: the sky cycling day/night every two seconds, a sun arcing;
- hyperlapse: a fast camera pan over a city-like stripe pattern.

A reference image (``VideoSpec.reference``) is the first frame, fitted to the
frame (scaled to cover, centre-cropped); the mode's motion fades in over it.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from dataclasses import dataclass, field
from fractions import Fraction

import av
import cv2
import numpy as np

MODES = ("normal", "slow_motion", "time_lapse", "hyperlapse")
REFERENCE_FADE_S = 1.0


@dataclass(frozen=True)
class VideoSpec:
    prompt: str
    mode: str
    duration_s: float
    fps: float
    width: int
    height: int
    reference: bytes | None = field(default=None, repr=False)  # a reference image: the first frame

    @property
    def frame_count(self) -> int:
        return max(1, round(self.duration_s * self.fps))


def render_mp4(spec: VideoSpec) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(spec.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for index in range(spec.frame_count):
            rgb = render_frame(spec, index)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def render_frame(spec: VideoSpec, index: int) -> np.ndarray:
    """Frame ``index`` of the video (RGB, height × width × 3), as render_mp4 encodes it."""
    hue = int(hashlib.sha256(spec.prompt.encode()).hexdigest()[:4], 16) % 180  # the prompt tints the scene
    scene = _SCENES[spec.mode](spec, index / spec.fps, hue)
    if spec.reference is None:
        return scene
    # With a reference image: frame 0 is the image (fitted to the frame); the mode's motion
    # fades in over it during the first second (at most half the clip), to an even blend.
    t = index / spec.fps
    weight = 0.5 * min(1.0, t / min(REFERENCE_FADE_S, spec.duration_s / 2))
    image = reference_rgb(spec.reference, spec.width, spec.height).astype(np.float32)
    return ((1 - weight) * image + weight * scene.astype(np.float32)).round().astype(np.uint8)


@lru_cache(maxsize=8)
def reference_rgb(data: bytes, width: int, height: int) -> np.ndarray:
    """The image decoded to RGB, scaled to cover width × height and centre-cropped."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("not a decodable image")
    scale = max(width / bgr.shape[1], height / bgr.shape[0])
    scaled = cv2.resize(bgr, (max(width, round(bgr.shape[1] * scale)), max(height, round(bgr.shape[0] * scale))),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    rgb = cv2.cvtColor(scaled[top : top + height, left : left + width], cv2.COLOR_BGR2RGB)
    rgb.setflags(write=False)  # shared by the cache
    return rgb


def _tint(hue: int, saturation: int, value: int) -> tuple[int, int, int]:
    hsv = np.uint8([[[hue % 180, saturation, value]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _gradient(spec: VideoSpec, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, spec.height, dtype=np.float32)[:, None, None]
    column = (1 - ramp) * np.float32(top) + ramp * np.float32(bottom)
    return np.repeat(column, spec.width, axis=1).astype(np.uint8)


def _normal(spec: VideoSpec, t: float, hue: int) -> np.ndarray:
    frame = _gradient(spec, _tint(hue, 60, 200), _tint(hue, 90, 120))
    x = int((t / spec.duration_s) * spec.width)
    radius = max(2, spec.height // 8)
    cv2.circle(frame, (x, spec.height // 2), radius, _tint(hue + 90, 220, 230), -1, cv2.LINE_AA)
    return frame


def _slow_motion(spec: VideoSpec, t: float, hue: int) -> np.ndarray:
    frame = _gradient(spec, (30, 30, 40), (70, 70, 80))
    radius = max(2, spec.height // 10)
    # Falls from the top to the floor over the clip: gravity played back slowly.
    y = radius + int((spec.height - 2 * radius) * (t / spec.duration_s) ** 2)
    cv2.circle(frame, (spec.width // 2, y), radius, _tint(hue, 200, 240), -1, cv2.LINE_AA)
    return frame


def _time_lapse(spec: VideoSpec, t: float, hue: int) -> np.ndarray:
    daylight = 0.5 + 0.5 * np.sin(2 * np.pi * t / 2.0)  # a day every two seconds
    sky = tuple(int(c * (0.15 + 0.85 * daylight)) for c in (110, 170, 255))
    frame = _gradient(spec, sky, tuple(min(255, c + 40) for c in sky))
    sun_x = int(spec.width * ((t / 2.0) % 1.0))
    sun_y = int(spec.height * (0.7 - 0.5 * daylight))
    cv2.circle(frame, (sun_x, sun_y), max(2, spec.height // 12), (255, 230, 120), -1, cv2.LINE_AA)
    frame[int(spec.height * 0.75) :] = _tint(hue, 150, int(40 + 80 * daylight))
    return frame


def _hyperlapse(spec: VideoSpec, t: float, hue: int) -> np.ndarray:
    # The camera moves an eighth of the frame width per frame over "buildings".
    panorama, period = _skyline(spec.width, spec.height, hue)
    offset = int(t * spec.fps * spec.width / 8) % period
    return np.ascontiguousarray(panorama[:, offset : offset + spec.width])


@lru_cache(maxsize=8)
def _skyline(width: int, height: int, hue: int) -> tuple[np.ndarray, int]:
    """A skyline that repeats every ``period`` px, drawn ``period`` px wider than a frame."""
    block = max(4, width // 64 * 4)  # building width, a multiple of the 4 px window grid
    period = 16 * block
    span = width + period
    x = np.arange(span)
    heights = (0.3 + 0.5 * (((x // block) % 16 * 7919) % 97) / 97.0) * height
    rows = np.arange(height)[:, None]
    building = rows >= height - heights[None, :]
    windows = building & ((rows // 4 + x[None, :] // 4) % 2 == 0)
    sky = np.repeat(np.linspace(180, 235, height, dtype=np.float32)[:, None], span, axis=1)
    panorama = np.stack([sky, sky, np.full_like(sky, 240)], axis=-1).astype(np.uint8)
    shade = (60 + (x // block % 3) * 40).astype(np.uint8)
    panorama[building] = np.stack([shade, shade, shade + 20], axis=-1)[np.nonzero(building)[1]]
    panorama[windows] = _tint(hue, 120, 220)
    return panorama, period


_SCENES = {"normal": _normal, "slow_motion": _slow_motion, "time_lapse": _time_lapse, "hyperlapse": _hyperlapse}
