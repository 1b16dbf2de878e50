"""Small real clips for the assembly tests: a solid colour per clip (its signature) with a
white bar that moves one step a frame (so inter frames carry bits), H.264 through PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

RED, GREEN, BLUE, YELLOW = (40, 40, 210), (40, 200, 40), (210, 60, 40), (40, 210, 210)  # BGR


def write_clip(path: Path, size: tuple[int, int], fps: int, seconds: float, colour: tuple[int, int, int],
               options: dict[str, str] | None = None, rotation: int = 0) -> int:
    """Returns the frame count written."""
    width, height = size
    frames = round(seconds * fps)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps),
                                      options=options or {"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = colour
            image[:, (i * 2) % width] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return frames


def read_frames(path: Path) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    """Every frame OpenCV decodes (BGR), the fps it reports and the size."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    capture.release()
    return frames, fps, size


def centre_colour(frame: np.ndarray) -> np.ndarray:
    """Median BGR of a small patch at the centre (the moving bar crosses it for a frame or two)."""
    h, w = frame.shape[:2]
    patch = frame[h // 2 - 4:h // 2 + 4, w // 2 - 4:w // 2 + 4]
    return np.median(patch.reshape(-1, 3), axis=0)


def nearest(colour: np.ndarray, palette: list[tuple[int, int, int]]) -> int:
    return int(np.argmin([np.abs(colour - np.array(p)).sum() for p in palette]))
