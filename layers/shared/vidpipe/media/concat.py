"""Join clips, in order, into one H.264 MP4 with one size and frame rate (PyAV, libx264).

A clip that already is what the episode is made of (H.264, yuv420p, the target
size, upright, square pixels, constant frame timing at the target rate) is
copied packet by packet (remux): no decode, no quality loss. Every other clip
is decoded, fitted into the frame (scaled keeping its aspect ratio, centred on
black), retimed to the target rate (each output slot shows the source frame
nearest to its time) and encoded.

One MP4 track carries one set of H.264 parameter sets (SPS/PPS, the ``avcC``
box). Copied packets decode correctly only under the parameter sets they were
encoded with: measured here, a clip from another encoder setting (same
encoder, another CRF) copied next to another decodes in OpenCV without an
error but with the wrong pictures. So a clip is remuxed only when its
parameter sets are byte-identical to the track's:

- every clip remuxable and all share one set → the track takes that set and
  every clip is copied (shots from one provider at the episode's format);
- otherwise the track takes this module's encoder's set; clips whose set is
  identical to it are still copied, the rest are re-encoded (the reason says
  which: format, or parameter sets).

Memory stays bounded: one decoded frame (and its scaled copy) at a time;
packets stream from the clip files on disk to the episode file on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
from av.codec.context import Flags

from vidpipe.errors import InputRejected, OutputInvalid
from vidpipe.media.decoding import FrameClock

# The episode's encoder. Parameter sets depend on these settings and the size, not on the
# pictures: two clips encoded with the same settings share them (and can be remuxed together).
ENCODER = "libx264"
PIX_FMT = "yuv420p"
PRESET = "veryfast"
CRF = 20
GOP_SECONDS = 2
# x264 frame threads, as the ffmpeg CLI uses (PyAV's default is slice threads; on 2 loaded cores
# the two measured the same, within noise).
ENCODER_THREADS = "FRAME"


@dataclass(frozen=True)
class Target:
    width: int
    height: int
    fps: int

    def __post_init__(self):
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(f"the episode size {self.width}x{self.height} must be even and at least 16x16")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"the episode frame rate {self.fps} must be within 1..120")

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass
class ClipFacts:
    """What deciding remux vs re-encode needs, read from the container and its packets (no decoding)."""

    path: str
    codec: str
    pix_fmt: str | None
    width: int
    height: int
    rotation: int
    square_pixels: bool
    fps: Fraction  # average rate
    time_base: Fraction
    extradata: bytes
    frames: int  # video packets
    first_is_key: bool  # the first packet in decode order is a keyframe shown first
    on_grid: bool  # every frame at k × (1 / fps), k = 0, 1, 2 ... in presentation order

    @property
    def parameter_sets(self) -> tuple[bytes, ...]:
        return parameter_sets(self.extradata)

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.fps) if self.fps else 0.0


def inspect_clip(path: str | os.PathLike, fps: int | None = None) -> ClipFacts:
    """Read the clip's header and every packet header, and decode its first frame (``InputRejected``
    when it is not a readable video). ``fps``: the rate whose frame grid ``on_grid`` checks
    (default: the clip's own)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputRejected("the file has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
            time_base = Fraction(stream.time_base)
            pts: list[int] = []
            first_pts, first_is_key = None, False
            ctx.thread_count = 1  # one picture to decode: no thread pool to start, no frame-thread delay
            first = None  # the first picture: decoding it is what tells a video from a damaged file
            for packet in container.demux(stream):
                if first is None:
                    first = next(iter(ctx.decode(packet)), None)
                if packet.size == 0 or packet.pts is None:
                    continue
                if first_pts is None:
                    first_pts, first_is_key = packet.pts, packet.is_keyframe
                pts.append(packet.pts)
            if not pts:
                raise InputRejected("the video stream holds no frames")
            if first is None:
                raise InputRejected("no frame of the video stream decodes")
            pts.sort()
            sar = ctx.sample_aspect_ratio
            facts = dict(codec=ctx.name, pix_fmt=ctx.pix_fmt, width=ctx.width, height=ctx.height,
                         square_pixels=not sar or sar == 1, fps=rate, time_base=time_base,
                         extradata=bytes(ctx.extradata or b""), frames=len(pts),
                         first_is_key=first_is_key and first_pts == pts[0],
                         on_grid=_on_grid(pts, time_base, Fraction(fps) if fps else rate))
    except av.FFmpegError as exc:
        raise InputRejected(f"the file is not a readable video ({exc.strerror or type(exc).__name__})") from exc
    return ClipFacts(path=str(path), rotation=int(first.rotation or 0) % 360, **facts)


def parameter_sets(extradata: bytes) -> tuple[bytes, ...]:
    """The SPS and PPS NAL units in H.264 extradata, whichever way it is written: an ``avcC``
    record (as MP4 stores it) or Annex B start codes (as libx264 hands it to the muxer).
    Unparseable extradata comes back whole, so it only ever equals itself."""
    data = bytes(extradata or b"")
    if len(data) > 6 and data[0] == 1:  # avcC: version 1
        units, i = [], 6
        try:
            for count_at_sps in (True, False):
                count = (data[5] & 0x1F) if count_at_sps else data[i]
                i += 0 if count_at_sps else 1
                for _ in range(count):
                    length = int.from_bytes(data[i:i + 2], "big")
                    units.append(data[i + 2:i + 2 + length])
                    i += 2 + length
        except IndexError:
            return (data,)
        return tuple(units)
    if _is_annex_b(data):
        parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
        return tuple(part.rstrip(b"\x00") for part in parts if part)
    return (data,)


def _on_grid(pts: Sequence[int], time_base: Fraction, fps: Fraction) -> bool:
    if not fps:
        return False
    ticks = 1 / (fps * time_base)  # ticks of time_base per frame
    if ticks.denominator != 1:
        return False
    step = ticks.numerator
    return all(b - a == step for a, b in zip(pts, pts[1:]))


def format_mismatch(clip: ClipFacts, target: Target) -> str | None:
    """Why the clip cannot be copied as is into the target's track (None: it can, format-wise)."""
    if clip.codec != "h264":
        return f"codec {clip.codec}, the episode is H.264"
    if not clip.extradata or clip.extradata[0] != 1:
        return "its H.264 carries no avcC record (parameter sets in band, as in MPEG-TS)"
    if (clip.width, clip.height) != (target.width, target.height):
        return f"size {clip.width}x{clip.height}, the episode is {target.size}"
    if clip.fps != target.fps:
        return f"{float(clip.fps):g} fps, the episode is {target.fps} fps"
    if clip.pix_fmt != PIX_FMT:
        return f"pixel format {clip.pix_fmt}, the episode is {PIX_FMT}"
    if clip.rotation:
        return f"rotated {clip.rotation} degrees by its display matrix"
    if not clip.square_pixels:
        return "non-square pixels"
    if not clip.on_grid:
        return f"frame times off the {target.fps} fps grid (variable timing)"
    if not clip.first_is_key:
        return "does not start with a keyframe"
    return None


PARAMETER_SETS_DIFFER = ("its H.264 parameter sets (SPS/PPS) differ from the episode track's; "
                         "one MP4 track carries one set")


@dataclass
class Segment:
    """One clip as it ended up in the episode."""

    method: Literal["remux", "reencode"]
    reason: str | None  # why it was re-encoded
    start_frame: int
    frames: int
    source_frames: int
    note: str | None = None  # e.g. decoding stopped early


@dataclass
class Plan:
    track: Literal["copied", "encoder"]  # whose parameter sets the track carries
    reasons: list[str | None]  # per clip: None = remux, else why it is re-encoded


def copies_all(clips: Sequence[ClipFacts], target: Target) -> bool:
    """Every clip is of the target's format and all share one set of parameter sets."""
    return (all(format_mismatch(c, target) is None for c in clips)
            and len({(c.parameter_sets, _nal_length_size(c.extradata)) for c in clips}) == 1)


def plan(clips: Sequence[ClipFacts], target: Target, encoder_extradata: Callable[[], bytes]) -> Plan:
    if copies_all(clips, target):
        return Plan("copied", [None] * len(clips))
    mismatches = [format_mismatch(c, target) for c in clips]
    ours = parameter_sets(encoder_extradata())
    return Plan("encoder", [m or (None if c.parameter_sets == ours else PARAMETER_SETS_DIFFER)
                            for c, m in zip(clips, mismatches, strict=True)])


def encoder_options(target: Target) -> dict[str, str]:
    gop = str(GOP_SECONDS * target.fps)
    return {"preset": PRESET, "crf": str(CRF), "g": gop}


def concat_clips(clips: Sequence[ClipFacts], target: Target, out_path: str | os.PathLike,
                 on_segment: Callable[[int, Segment], None] = lambda i, s: None) -> tuple[Plan, list[Segment]]:
    """Write ``out_path`` (MP4, index up front) from ``clips`` in order; one Segment per clip."""
    if not clips:
        raise ValueError("nothing to join")
    segments: list[Segment] = []
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        if copies_all(clips, target):
            with av.open(clips[0].path) as first:
                stream = out.add_stream_from_template(first.streams.video[0])
            the_plan = Plan("copied", [None] * len(clips))
        else:
            stream = out.add_stream(ENCODER, rate=target.fps, options=encoder_options(target))
            stream.width, stream.height, stream.pix_fmt = target.width, target.height, PIX_FMT
            stream.codec_context.thread_type = ENCODER_THREADS
            the_plan = None
        out.start_encoding()
        if the_plan is None:
            ours = bytes(stream.codec_context.extradata or b"")
            the_plan = plan(clips, target, lambda: ours)
        writer = _TrackWriter(out, stream, target)
        for i, (clip, reason) in enumerate(zip(clips, the_plan.reasons, strict=True)):
            if reason is None:
                segment = writer.remux(clip)
            else:
                segment = writer.reencode(clip, reason)
            segments.append(segment)
            on_segment(i, segment)
    return the_plan, segments


class _TrackWriter:
    """Appends segments to the one video track; times in the track's time base."""

    def __init__(self, out, stream, target: Target):
        self.out, self.stream, self.target = out, stream, target
        self.tb = Fraction(stream.time_base)
        ticks = 1 / (target.fps * self.tb)
        if ticks.denominator != 1:  # the MP4 muxer picks a multiple of the rate; never expected
            raise OutputInvalid(f"the track's time base {self.tb} is not a multiple of {target.fps} fps")
        self.frame_ticks = ticks.numerator
        self.next_frame = 0  # where the next segment starts, in frames
        self.last_dts: int | None = None
        # The MP4 muxer rewrites packets from Annex B (start codes) to length prefixes when the track's
        # extradata is Annex B (libx264's): copied packets, length-prefixed already, must then go in as
        # Annex B too, or the muxer misreads them (measured: the episode stops decoding after the first shot).
        self.annex_b = _is_annex_b(bytes(stream.codec_context.extradata or b""))

    def _start_ticks(self, first_dts_offset: int) -> int:
        """Ticks where a segment starts: the next frame slot, pushed later only if its first decode
        time would not come after the last one written (a deeper B-frame delay than the segment before)."""
        start = self.next_frame * self.frame_ticks
        if self.last_dts is not None and start + first_dts_offset <= self.last_dts:
            shift_frames = -(-(self.last_dts + 1 - start - first_dts_offset) // self.frame_ticks)
            self.next_frame += shift_frames
            start = self.next_frame * self.frame_ticks
        return start

    def _write(self, packet, pts: int, dts: int, duration: int) -> None:
        packet.stream = self.stream
        packet.time_base = self.tb
        packet.pts, packet.dts, packet.duration = pts, dts, duration
        self.out.mux_one(packet)
        self.last_dts = dts

    def remux(self, clip: ClipFacts) -> Segment:
        scale = clip.time_base / self.tb  # track ticks per clip tick
        with av.open(clip.path) as container:
            src = container.streams.video[0]
            packets = (p for p in container.demux(src) if p.size and p.pts is not None)
            first = next(packets)
            origin = first.pts  # frame 0: the keyframe shown first (inspect_clip checked it)
            start = self._start_ticks(_ticks(_dts(first) - origin, scale))
            frames = 0
            length_size = _nal_length_size(clip.extradata)
            for packet in _chain(first, packets):
                pts = start + _ticks(packet.pts - origin, scale)
                dts = start + _ticks(_dts(packet) - origin, scale)
                if self.annex_b:
                    packet = _as_annex_b(packet, length_size)
                self._write(packet, pts, dts, self.frame_ticks)
                frames += 1
        segment = Segment("remux", None, start // self.frame_ticks, frames, clip.frames)
        self.next_frame = segment.start_frame + frames
        return segment

    def reencode(self, clip: ClipFacts, reason: str) -> Segment:
        target = self.target
        slots = max(1, round(clip.frames * target.fps / float(clip.fps))) if clip.fps else clip.frames
        encoder = av.CodecContext.create(ENCODER, "w")
        encoder.width, encoder.height, encoder.pix_fmt = target.width, target.height, PIX_FMT
        encoder.time_base, encoder.framerate = Fraction(1, target.fps), Fraction(target.fps)
        encoder.options = encoder_options(target)
        encoder.flags |= Flags.global_header  # parameter sets out of band, as MP4 wants
        encoder.thread_type = ENCODER_THREADS
        encoder.open()
        if bytes(encoder.extradata or b"") != bytes(self.stream.codec_context.extradata or b""):
            raise OutputInvalid("the segment encoder's parameter sets differ from the track's")
        start: int | None = None
        encoded = 0
        note = None

        def write(packets) -> None:
            nonlocal start
            for packet in packets:
                if start is None:
                    start = self._start_ticks((packet.dts - packet.pts) * self.frame_ticks)
                self._write(packet, start + packet.pts * self.frame_ticks, start + packet.dts * self.frame_ticks,
                            self.frame_ticks)

        fitted = _Fitter(target)
        with av.open(clip.path) as container:
            src = container.streams.video[0]
            src.thread_type = "AUTO"
            clock = FrameClock(src)
            period = 1.0 / target.fps
            current, current_t, scaled = None, 0.0, None
            origin = None
            try:
                for frame in container.decode(src):
                    t = clock(frame)
                    if origin is None:
                        origin = t
                    t -= origin
                    if current is not None:
                        boundary = (current_t + t) / 2  # slots nearer this frame than the next one show it
                        while encoded < slots and encoded * period < boundary - 1e-9:
                            scaled = scaled or fitted(current)
                            write(encoder.encode(_stamped(scaled, encoded, encoder.time_base)))
                            encoded += 1
                    current, current_t, scaled = frame, t, None
                    if encoded >= slots:
                        break
            except av.FFmpegError as exc:
                note = f"decoding stopped after {encoded} of {slots} frames ({exc.strerror or type(exc).__name__})"
                slots = encoded + 1 if current is not None else encoded
            if current is None:
                raise InputRejected("no frame of the clip decodes")
            while encoded < slots:
                scaled = scaled or fitted(current)
                write(encoder.encode(_stamped(scaled, encoded, encoder.time_base)))
                encoded += 1
        write(encoder.encode(None))
        segment = Segment("reencode", reason, (start or 0) // self.frame_ticks, encoded, clip.frames, note)
        self.next_frame = segment.start_frame + encoded
        return segment


def _chain(first, rest):
    yield first
    yield from rest


def _is_annex_b(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def _nal_length_size(extradata: bytes) -> int:
    """Bytes of each NAL unit's length prefix in an avcC stream's packets (almost always 4)."""
    return (extradata[4] & 0x03) + 1 if len(extradata) > 4 and extradata[0] == 1 else 4


def _as_annex_b(packet: av.Packet, length_size: int) -> av.Packet:
    data, out, i = bytes(packet), bytearray(), 0
    while i + length_size <= len(data):
        length = int.from_bytes(data[i:i + length_size], "big")
        i += length_size
        if length <= 0 or i + length > len(data):
            raise OutputInvalid(f"a copied packet holds a NAL unit cut short ({length} bytes at {i})")
        out += b"\x00\x00\x00\x01" + data[i:i + length]
        i += length
    converted = av.Packet(bytes(out))
    converted.is_keyframe = packet.is_keyframe
    return converted


def _dts(packet) -> int:
    return packet.dts if packet.dts is not None else packet.pts


def _ticks(clip_ticks: int, scale: Fraction) -> int:
    return round(clip_ticks * scale)


def _stamped(frame: av.VideoFrame, index: int, time_base: Fraction) -> av.VideoFrame:
    frame.pts, frame.time_base = index, time_base
    return frame


class _Fitter:
    """Upright, scaled to fit the target keeping the aspect ratio, centred on black, yuv420p
    (an FFmpeg filter graph, built from the first frame it sees)."""

    def __init__(self, target: Target):
        self.target = target
        self.graph = None
        self.key = None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        key = (frame.width, frame.height, frame.format.name, int(getattr(frame, "rotation", 0) or 0) % 360)
        if key != self.key:
            self.graph, self.key = self._build(*key), key
        self.graph.push(frame)
        return self.graph.pull()

    def _build(self, width: int, height: int, pix_fmt: str, rotation: int):
        w, h = self.target.width, self.target.height
        graph = av.filter.Graph()
        chain = [graph.add_buffer(width=width, height=height, format=pix_fmt, time_base=Fraction(1, 1000))]
        # rotation is counter-clockwise (as np.rot90 turns, see decoding.upright_bgr)
        turns = {90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")]}
        for name, args in turns.get(rotation, []):
            chain.append(graph.add(name, args))
        chain.append(graph.add("scale", f"w={w}:h={h}:force_original_aspect_ratio=decrease:force_divisible_by=2"))
        chain.append(graph.add("pad", f"w={w}:h={h}:x=(ow-iw)/2:y=(oh-ih)/2:color=black"))
        chain.append(graph.add("setsar", "1"))
        chain.append(graph.add("format", PIX_FMT))
        chain.append(graph.add("buffersink"))
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        return graph


def decode_episode(path: str | os.PathLike, pick: set[int],
                   keep: Callable[[int, av.VideoFrame], object] = lambda i, f: f) -> tuple[int, dict[int, object]]:
    """Decode every frame of ``path`` (``OutputInvalid`` if it stops decoding); returns the count and
    ``keep(index, frame)`` for each frame index in ``pick``."""
    picked: dict[int, object] = {}
    decoded = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if decoded in pick:
                    picked[decoded] = keep(decoded, frame)
                decoded += 1
    except av.FFmpegError as exc:
        raise OutputInvalid(f"the episode stops decoding after {decoded} frames ({exc.strerror or exc})") from exc
    return decoded, picked
