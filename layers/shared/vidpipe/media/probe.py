"""What a video file is, from its container metadata and its first frame only.

``probe_video`` never decodes more than the first frame: that one decode is what
tells a readable upload from a truncated or mislabelled one. Every refusal is an
``InputRejected`` whose ``reason`` says what is wrong in words a user can act on.
"""

from __future__ import annotations

import os
import struct
from contextlib import nullcontext
import av
from pydantic import BaseModel

from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe.media.decoding import VideoSource, open_input

# Demuxers and codecs that hold pictures, not footage (ffmpeg's image readers).
_IMAGE_DEMUXERS = ("_pipe", "image2")
_IMAGE_CODECS = {"png", "mjpeg", "jpegls", "bmp", "gif", "webp", "tiff", "jpeg2000", "qoi"}
# Walking the packet index for keyframe hints costs ~1 µs an entry; stop being "cheap" past this.
_MAX_INDEX_ENTRIES = 500_000


class VideoInfo(BaseModel):
    """Facts about a video. ``width``/``height`` are as stored; ``rotation`` (degrees
    counter-clockwise, from the display matrix) says how to turn frames upright."""

    duration_s: float
    fps: float
    frame_count: int  # from the container when it says, else duration × fps
    width: int
    height: int
    codec: str
    rotation: int = 0
    size_bytes: int
    container: str = ""
    keyframe_count: int | None = None  # from the packet index, when the container has one
    keyframe_interval_s: float | None = None  # mean spacing of those keyframes

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after the rotation."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


def probe_video(source: VideoSource) -> VideoInfo:
    """Read a video's metadata and decode its first frame; ``InputRejected`` if it is not a usable video.

    ``source`` is a path or a seekable binary file: only the container's header and index and the
    first frame's packets are read from it."""
    size_bytes = _size_of(source)
    if size_bytes == 0:
        raise InputRejected("the file is empty (0 bytes)")
    try:
        container = open_input(source)
    except av.FFmpegError as exc:
        raise InputRejected(_unreadable_reason(source, exc)) from exc

    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise InputRejected(f"the file has no video stream (found: {', '.join(kinds)})")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if any(tag in container.format.name for tag in _IMAGE_DEMUXERS):
            raise InputRejected(f"the file is a still image ({codec}), not a video")

        first = _first_frame(container, stream)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration_s = _duration_s(container, stream, fps)
        frame_count = stream.frames or round(duration_s * fps)
        if frame_count <= 1:
            kind = f"a still image ({codec})" if codec in _IMAGE_CODECS else "a single frame"
            raise InputRejected(f"the file holds {kind}, not a video")
        if duration_s <= 0 or fps <= 0:
            raise InputRejected("the video has no duration (0 s)")
        keyframe_count, keyframe_interval_s = _keyframe_hints(stream)
        return VideoInfo(
            duration_s=duration_s,
            fps=fps,
            frame_count=frame_count,
            width=stream.codec_context.width or first.width,
            height=stream.codec_context.height or first.height,
            codec=codec,
            rotation=int(first.rotation) % 360,
            size_bytes=size_bytes,
            container=container.format.name,
            keyframe_count=keyframe_count,
            keyframe_interval_s=keyframe_interval_s,
        )


def check_caps(info: VideoInfo, settings: Settings) -> None:
    """``InputRejected`` naming the cap and both numbers when the video exceeds one.

    Resolution is checked orientation-free (long side against the long cap) so a
    portrait video is held to the same limit as its landscape twin.
    """
    if info.size_bytes > settings.max_video_bytes:
        raise InputRejected(
            f"the file is {_mib(info.size_bytes)}, over the {_mib(settings.max_video_bytes)} size cap (max_video_bytes)"
        )
    if info.duration_s > settings.max_duration_s:
        raise InputRejected(
            f"the video lasts {info.duration_s:.1f} s, over the {settings.max_duration_s:.0f} s cap (max_duration_s)"
        )
    long_cap, short_cap = sorted((settings.max_width, settings.max_height), reverse=True)
    long_side, short_side = sorted((info.width, info.height), reverse=True)
    if long_side > long_cap or short_side > short_cap:
        raise InputRejected(
            f"the video is {info.width}x{info.height}, over the {settings.max_width}x{settings.max_height} "
            "resolution cap (max_width x max_height)"
        )


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise InputRejected(f"the first video frame cannot be decoded ({exc.strerror or exc})") from exc
    raise InputRejected("the video stream holds no decodable frame (truncated or empty)")


def _duration_s(container: av.container.InputContainer, stream: av.VideoStream, fps: float) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return stream.frames / fps if stream.frames and fps else 0.0


def _keyframe_hints(stream: av.VideoStream) -> tuple[int | None, float | None]:
    entries = stream.index_entries
    if not entries or len(entries) > _MAX_INDEX_ENTRIES:
        return None, None
    stamps = [entry.timestamp for entry in entries if entry.is_keyframe]
    if len(stamps) < 2:
        return len(stamps), None
    return len(stamps), float((stamps[-1] - stamps[0]) * stream.time_base / (len(stamps) - 1))


def _size_of(source: VideoSource) -> int:
    if isinstance(source, (str, os.PathLike)):
        return os.stat(source).st_size
    source.seek(0, os.SEEK_END)
    return source.tell()


def _unreadable_reason(source: VideoSource, exc: av.FFmpegError) -> str:
    box_problem = _mp4_box_problem(source)
    if box_problem:
        return f"the MP4 is truncated or damaged: {box_problem}"
    return f"the file is not a readable video ({exc.strerror or type(exc).__name__})"


def _mp4_box_problem(source: VideoSource) -> str | None:
    """For ISO-BMFF files (MP4/MOV) that FFmpeg refused: which top-level box is cut short or missing.
    Reads only the top-level box headers."""
    size = _size_of(source)
    complete: set[str] = set()
    problems = []
    opened = open(source, "rb") if isinstance(source, (str, os.PathLike)) else nullcontext(source)
    with opened as f:
        f.seek(0)
        if f.read(8)[4:8] != b"ftyp":
            return None
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            box_size, box_type = struct.unpack(">I4s", f.read(8))
            if box_size == 1:
                (box_size,) = struct.unpack(">Q", f.read(8))
            elif box_size == 0:  # "extends to the end of the file"
                box_size = size - offset
            name = box_type.decode("latin-1")
            if box_size < 8:
                return f"the '{name}' box at byte {offset} has an invalid size"
            if offset + box_size > size:
                problems.append(f"the file ends {size - offset} bytes into the {box_size}-byte '{name}' box")
                break
            complete.add(name)
            offset += box_size
    if "moov" not in complete:
        problems.append("no complete 'moov' box (the index that makes it playable)")
    return "; ".join(problems) + "; was the upload cut short?" if problems else None


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n < 1024**3 else f"{n / 1024**3:.2f} GiB"
