"""Checks on a produced video (e.g. a generated one): does it decode, is it what was asked for."""

from __future__ import annotations

import os
from collections.abc import Mapping

import av
from pydantic import BaseModel

from vidpipe.errors import InputRejected, OutputInvalid
from vidpipe.media.decoding import FrameClock, open_video, seek_before, upright_bgr
from vidpipe.media.probe import VideoInfo, probe_video
from vidpipe.media.resize import encode_jpeg


class ExpectedVideo(BaseModel):
    """What was asked for; ``None`` fields are not checked. Sizes are as displayed."""

    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None


class VerifyResult(BaseModel):
    ok: bool
    info: VideoInfo
    decoded_frames: int
    mismatches: list[str]  # one readable line each


def verify_video(
    path: str | os.PathLike,
    expected: ExpectedVideo | Mapping | object | None = None,
    tolerance: float = 0.05,
) -> VerifyResult:
    """Decode every frame and compare the video with ``expected`` (a mapping, or any
    object with ``duration_s``/``fps``/``width``/``height`` attributes; missing or
    ``None`` ones are not checked).

    ``tolerance`` is relative, for duration and fps (a 5 s request may come back
    as 5.04 s); width and height must match exactly. Raises ``OutputInvalid``
    when the file is not a video, stops decoding, or holds under 90 % of the
    frames its index lists (a truncated download); a video that decodes but
    differs from the request comes back with ``ok=False`` and the mismatches.
    """
    expected = ExpectedVideo.model_validate(expected or {}, from_attributes=True)
    try:
        info = probe_video(path)
    except InputRejected as exc:
        raise OutputInvalid(f"the produced video is unusable: {exc.reason}") from exc
    decoded = _count_decoded_frames(path)
    if decoded < 0.9 * info.frame_count:  # an index written up front, then the data cut short
        raise OutputInvalid(
            f"the produced video is cut short: {decoded} of the {info.frame_count} frames it lists decode"
        )

    mismatches = []
    if expected.duration_s is not None and not _close(info.duration_s, expected.duration_s, tolerance):
        mismatches.append(f"duration {info.duration_s:.2f} s, expected {expected.duration_s:.2f} s (±{tolerance:.0%})")
    if expected.fps is not None and not _close(info.fps, expected.fps, tolerance):
        mismatches.append(f"frame rate {info.fps:.3f} fps, expected {expected.fps:.3f} fps (±{tolerance:.0%})")
    width, height = info.display_size
    if (expected.width is not None and width != expected.width) or (
        expected.height is not None and height != expected.height
    ):
        mismatches.append(f"size {width}x{height}, expected {expected.width or '*'}x{expected.height or '*'}")
    return VerifyResult(ok=not mismatches, info=info, decoded_frames=decoded, mismatches=mismatches)


def poster_frame(path: str | os.PathLike, at_fraction: float = 0.5, quality: int = 85) -> bytes:
    """JPEG of the frame at ``at_fraction`` of the duration (upright, full size)."""
    if not 0 <= at_fraction <= 1:
        raise ValueError("at_fraction must be within [0, 1]")
    try:
        info = probe_video(path)
        target_s = min(at_fraction * info.duration_s, max(0.0, info.duration_s - 1 / info.fps))
        with open_video(path) as (container, stream):
            clock = FrameClock(stream)
            seek_before(container, stream, clock, target_s)
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if clock(frame) >= target_s - 1e-6:
                    break
            if chosen is None:
                raise OutputInvalid(f"no frame decodes near {target_s:.2f} s")
            return encode_jpeg(upright_bgr(chosen), quality)
    except InputRejected as exc:
        raise OutputInvalid(f"the produced video is unusable: {exc.reason}") from exc
    except av.FFmpegError as exc:
        raise OutputInvalid(f"the produced video stops decoding ({exc.strerror or exc})") from exc


def _count_decoded_frames(path: str | os.PathLike) -> int:
    try:
        with open_video(path) as (container, stream):
            return sum(1 for _ in container.decode(stream))
    except av.FFmpegError as exc:
        raise OutputInvalid(f"the produced video stops decoding ({exc.strerror or exc})") from exc


def _close(actual: float, wanted: float, tolerance: float) -> bool:
    return abs(actual - wanted) <= tolerance * abs(wanted)
