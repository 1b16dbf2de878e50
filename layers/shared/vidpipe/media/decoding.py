"""PyAV plumbing shared by the samplers, verification and poster frames."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import av
import numpy as np

from vidpipe.errors import InputRejected

# A local path, or a seekable binary file (e.g. vidpipe.s3_file.S3RangeFile: ranged S3 reads).
VideoSource = str | os.PathLike | BinaryIO


def open_input(source: VideoSource) -> av.container.InputContainer:
    """Open a path, or a seekable file object from its start (PyAV then reads and seeks it as it needs)."""
    if isinstance(source, (str, os.PathLike)):
        return av.open(str(source))
    source.seek(0)
    return av.open(source, mode="r")


@contextmanager
def open_video(source: VideoSource) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """The container and its first video stream, decoding on all cores (frame + slice threads)."""
    with open_input(source) as container:
        if not container.streams.video:
            raise InputRejected("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream


class FrameClock:
    """Presentation time of frames in seconds from the stream's first frame.

    Frames without a pts (rare, broken muxers) get the previous time plus one
    frame period.
    """

    def __init__(self, stream: av.VideoStream):
        self.time_base = stream.time_base
        self.origin = stream.start_time or 0
        self.period = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
        self.previous: float | None = None
        # Integer arithmetic: the same correctly rounded float as float(pts × Fraction), without the Fractions.
        self._num, self._den = self.time_base.numerator, self.time_base.denominator

    def __call__(self, frame: av.VideoFrame) -> float:
        pts = frame.pts
        if pts is not None:
            t = self.seconds(pts)
        else:
            t = (self.previous or -self.period) + self.period
        self.previous = t
        return t

    def seconds(self, pts: int) -> float:
        """The time of a pts (a frame's, or a packet's before it is decoded), as ``__call__`` gives it."""
        return (pts - self.origin) * self._num / self._den

    def pts_of(self, t_s: float) -> int:
        return self.origin + int(t_s / self.time_base)


def seek_before(container: av.container.InputContainer, stream: av.VideoStream, clock: FrameClock, t_s: float) -> None:
    """Jump to the keyframe at or before ``t_s``; decoding then runs forward from it."""
    if t_s > 0:
        container.seek(clock.pts_of(t_s), stream=stream, backward=True, any_frame=False)


def upright_bgr(frame: av.VideoFrame) -> np.ndarray:
    """The full-size frame as BGR, turned upright according to the display matrix."""
    image = frame.to_ndarray(format="bgr24")
    rotation = int(frame.rotation) % 360  # counter-clockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(image, rotation // 90)) if rotation in (90, 180, 270) else image
