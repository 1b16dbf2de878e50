"""What the emulator "sees" in an image: real size, colours, brightness,
edges and a stable signature, all computed from the decoded pixels.

``image_signature(data)`` is public so tests and other modules can compute
the signature of the exact bytes they sent and find it in the answers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np


class ImageDecodeError(ValueError):
    pass


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    colours: tuple[str, ...]  # dominant first
    brightness: float  # mean grey level, 0..1
    edge_density: float  # share of edge pixels, 0..1
    signature: str  # 64-bit average hash, 16 hex digits

    @property
    def brightness_word(self) -> str:
        for limit, word in ((0.25, "dark"), (0.5, "dim"), (0.75, "bright")):
            if self.brightness < limit:
                return word
        return "very bright"

    @property
    def edge_word(self) -> str:
        if self.edge_density < 0.02:
            return "smooth"
        return "some edges" if self.edge_density < 0.08 else "busy edges"

    @property
    def tags(self) -> list[str]:
        return [*self.colours, self.brightness_word, self.edge_word]

    def describe(self) -> str:
        colours = f"a mostly {self.colours[0]} frame"
        if len(self.colours) > 1:
            colours += " with " + " and ".join(self.colours[1:])
        return f"{colours}, {self.brightness_word}, {self.edge_word} (sig:{self.signature})"


def image_signature(data: bytes) -> str:
    return analyze(data).signature


def analyze(data: bytes) -> ImageFacts:
    size = _header_size(data)
    bgr = _decode_small(data, max(size) if size else 0)
    width, height = size or (bgr.shape[1], bgr.shape[0])  # other formats (WebP...) decode in full
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return ImageFacts(
        width=width,
        height=height,
        colours=_dominant_colours(bgr),
        brightness=round(float(grey.mean()) / 255.0, 4),
        edge_density=round(float(np.count_nonzero(cv2.Canny(grey, 100, 200))) / grey.size, 4),
        signature=_average_hash(grey),
    )


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or JPEG header (no decode); None for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            raise ImageDecodeError("corrupt JPEG marker stream")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise ImageDecodeError("JPEG has no frame header")


# Decoding at 1/2, 1/4 or 1/8 keeps a 4096x8192 image cheap: the facts only
# need a thumbnail, and the real size comes from the header.
_REDUCED = ((4096, cv2.IMREAD_REDUCED_COLOR_8), (2048, cv2.IMREAD_REDUCED_COLOR_4), (1024, cv2.IMREAD_REDUCED_COLOR_2))


def _decode_small(data: bytes, long_side: int) -> np.ndarray:
    flag = next((f for limit, f in _REDUCED if long_side >= limit), cv2.IMREAD_COLOR)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if bgr is None:
        raise ImageDecodeError("image bytes do not decode")
    if max(bgr.shape[:2]) > 256:
        scale = 256 / max(bgr.shape[:2])
        bgr = cv2.resize(bgr, (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return bgr


def _average_hash(grey: np.ndarray) -> str:
    small = cv2.resize(grey, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    bits = (small > small.mean()).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


# OpenCV hue runs 0..179; each name owns a hue range (red wraps around).
_HUES = (
    (8, "red"),
    (20, "orange"),
    (33, "yellow"),
    (78, "green"),
    (98, "cyan"),
    (130, "blue"),
    (150, "purple"),
    (170, "pink"),
    (180, "red"),
)


def _dominant_colours(bgr: np.ndarray) -> tuple[str, ...]:
    hsv = cv2.cvtColor(cv2.resize(bgr, (32, 32), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV).reshape(-1, 3)
    hue, sat, val = (hsv[:, i].astype(int) for i in range(3))
    names = np.empty(len(hsv), dtype=object)
    names[:] = "grey"
    upper = np.array([limit for limit, _ in _HUES])
    chromatic = (sat >= 60) & (val >= 50)
    hue_names = np.array([name for _, name in _HUES], dtype=object)[np.searchsorted(upper, hue, side="right")]
    names[chromatic] = hue_names[chromatic]
    names[~chromatic & (val < 50)] = "black"
    names[~chromatic & (val >= 50) & (val > 200)] = "white"
    labels, counts = np.unique(names.astype(str), return_counts=True)
    ranked = sorted(zip(counts.tolist(), labels.tolist()), key=lambda c: (-c[0], c[1]))
    kept = [name for count, name in ranked if count >= 0.15 * len(hsv)][:3]
    return tuple(kept or [ranked[0][1]])
