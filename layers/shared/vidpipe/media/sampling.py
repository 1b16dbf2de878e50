"""Streaming frame sampling over one time segment [start_s, end_s) of a video.

Every strategy seeks once, to the keyframe before the segment (minus a pre-roll
for ``uniform`` and ``scene``), and decodes forward. Frames before ``start_s``
are decoded but only feed the detectors, so a segment sees exactly what a
single pass over the whole video would see at its start. Only kept frames are
converted to full-size BGR. Memory is bounded: a generator, a few held frames,
a ring of thumbnails. FFmpeg's frame threads decode the next frames while the
sampler works on the last (a skipped frame is not even handed to them where
that can be told from the packet: see ``RefinedSkipping``).

Strategies
- ``uniform``: the first frame at or after each tick of a global grid k / fps
  (k = 0, 1, ...), decoding straight through (seeking per sample is 3-6× slower);
  plus, as ``shot_start``, the first frame of a shot too short to hold a tick
  (after a gradual cut, which is confirmed well after its midpoint: a frame the
  detector looked at a stride or two before the confirmation).
  The shot detector looks at about ``SceneParams.detect_fps`` frames a second
  (one in 3 at 30 fps) on a grid anchored to the start of the video, so segments
  see the same frames as one pass. Hard cuts still land on their exact frame, as
  for ``scene``; gradual cuts land within a stride of where ``scene`` puts them. A
  frame comes out once no cut can still land at or before it (about 0.25 s of
  decoding later, a transition's length at most). It decodes less than every
  frame: frames no other frame refers to (in x264's B-frame groups, about half)
  are skipped unless one of the two grids picks them (``TickGrids``, from the
  packets' pts) or they follow a likely change (``RefinedSkipping``, as for
  ``scene``), so the frames, cuts and shots are those of a full decode.
- ``scene``: one frame at the start of every shot (after hard cuts and after
  fades / dissolves), then more only while the content keeps changing, at most
  ``fps`` a second; nothing on static stretches, blanks or mid-transition. It
  decodes less: frames no other frame refers to are skipped except after a
  likely change read from the packet sizes, and the detector looks at I/P
  frames and at every frame around such a change (``RefinedSkipping``), so hard
  cuts still land on their exact frame and a 3-frame shot is seen whole.
- ``keyframes``: the codec's keyframes only; the decoder skips every other
  frame (``skip_frame="NONKEY"``) and is not even handed their packets.

Segments and shots: a segment owns the cuts with start_s <= cut.t_s < end_s.
``shot_index`` counts this segment's cuts at or before the frame, so shot 0 is
the shot running at ``start_s``. To number shots across a video, add to each
segment's shot indices the total number of cuts of all the segments before it.
Cut times are rounded to the microsecond as frame times are, so the frame a
hard cut lands on has exactly the cut's time.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Literal

import av
import numpy as np
from av.video.frame import PictureType
from pydantic import BaseModel, ConfigDict

from vidpipe.errors import InputRejected
from vidpipe.media import h264
from vidpipe.media.decoding import FrameClock, VideoSource, open_video, seek_before, upright_bgr
from vidpipe.media.scenes import (
    Cut,
    SceneParams,
    StridedDetector,
    Thumb,
    detector_stride,
    grid_tick,
    hist_distance,
    pixel_difference,
)

_EPS = 1e-6  # seconds; frame times are exact rationals turned into floats


class Strategy(StrEnum):
    UNIFORM = "uniform"
    SCENE = "scene"
    KEYFRAMES = "keyframes"


class SampledFrame(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    t_s: float  # presentation time from the start of the video
    frame_index: int  # round(t_s × nominal fps): the frame's number in a constant-rate video
    shot_index: int  # cuts of this segment before t_s (see the module docstring)
    reason: Literal["uniform", "shot_start", "content_change", "keyframe"]
    image: np.ndarray  # BGR, full size, turned upright per the display matrix


class SegmentSampler:
    """Sample one segment: iterate it (or ``frames()``) for ``SampledFrame``s.

    During and after an iteration: ``cuts`` holds the segment's cuts found so
    far, ``decoded_frames`` counts the frames the decoder produced (pre-roll
    included), ``detected_frames`` those the shot detector looked at,
    ``truncated`` says whether ``max_frames`` stopped it early.
    Iterating again decodes again from the start.
    """

    def __init__(
        self,
        path: VideoSource,  # a local path or a seekable binary file (reopened from its start per iteration)
        strategy: Strategy | str = Strategy.UNIFORM,
        start_s: float = 0.0,
        end_s: float = math.inf,
        fps: float = 1.0,
        max_frames: int | None = None,
        scene: SceneParams | None = None,
    ):
        if not 0 <= start_s < end_s:
            raise ValueError(f"need 0 <= start_s < end_s, got [{start_s}, {end_s})")
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.path = path
        self.strategy = Strategy(strategy)
        self.start_s, self.end_s, self.fps = start_s, end_s, fps
        self.max_frames = max_frames
        self.scene = scene or SceneParams()
        self.cuts: list[Cut] = []
        self.decoded_frames = 0
        self.detected_frames = 0
        self.truncated = False
        self._clock: FrameClock | None = None
        self._nominal_fps = 0.0

    def __iter__(self) -> Iterator[SampledFrame]:
        return self.frames()

    def frames(self) -> Iterator[SampledFrame]:
        self.cuts, self.decoded_frames, self.detected_frames, self.truncated = [], 0, 0, False
        sample = {
            Strategy.UNIFORM: self._uniform,
            Strategy.SCENE: self._scene,
            Strategy.KEYFRAMES: self._keyframes,
        }[self.strategy]
        try:
            with open_video(self.path) as (container, stream):
                self._clock = FrameClock(stream)
                self._nominal_fps = 1.0 / self._clock.period
                for kept, frame in enumerate(sample(container, stream), start=1):
                    yield frame
                    if self.max_frames is not None and kept >= self.max_frames:
                        self.truncated = True
                        return
        except av.FFmpegError as exc:
            raise InputRejected(f"the video cannot be decoded ({exc.strerror or exc})") from exc

    # --- strategies ---------------------------------------------------------------

    def _uniform(self, container, stream) -> Iterator[SampledFrame]:
        stride = detector_stride(self._nominal_fps, self.scene)
        detector = StridedDetector(self.scene, self._nominal_fps, stride)
        waiting: deque[tuple[av.VideoFrame, float]] = deque()  # on a tick, shot index not final yet
        # A shot too short to hold a tick (0.3 s at 1 fps) still gets a frame: its first one. The first frame of
        # each cut's shot is held until the shot's first tick is known to be in it (then dropped) or not.
        # Where a new cut's frame is: the frames decoded since the detector's look before the previous one (a
        # hard cut lands after it). A gradual cut is confirmed lag_s after its midpoint, when that frame is gone:
        # its shot gets the oldest frame held, that look, which every way of decoding keeps.
        recent: deque[tuple[av.VideoFrame, float]] = deque()
        look_times: deque[float] = deque(maxlen=2)  # of the last two frames the detector looked at
        looks = 0
        shot_starts: deque[tuple[av.VideoFrame, float, float]] = deque()  # (frame, t, first tick at or after the cut)
        cuts_seen: list[float] = []  # every cut found, past the segment's end too
        previous_tick: int | None = None
        looked_at = -1
        last_t = -math.inf
        skipping = None
        if stride > 1:  # (stride 1: the detector looks at every frame, so every frame is needed)
            # Decode only the frames something needs: the first at or after each tick of the sampling grid
            # (the kept frames) and of the detector's, every reference frame (the others depend on them), and
            # every frame after a likely change (where a hard cut must land on its exact frame).
            ticks = TickGrids(self._clock, (self.fps, detector.rate))
            skipping = RefinedSkipping(stream.codec_context, ticks=ticks)
        for frame, t, verdict in self._detected(container, stream, detector, skipping):
            if verdict is not None and verdict.cut is not None:
                cut_t = round(verdict.cut.t_s, 6)
                cuts_seen.append(cut_t)
                if self.start_s - _EPS <= cut_t < self.end_s - _EPS:
                    first = next((e for e in recent if e[1] >= cut_t - _EPS), recent[-1] if recent else None)
                    if first is not None:
                        shot_starts.append((*first, math.ceil(cut_t * self.fps - _EPS) / self.fps))
            if frame is not None:
                recent.append((frame, t))
                if detector.looked_at > looks:  # the detector looked at this frame
                    looks = detector.looked_at
                    look_times.append(t)
                    while recent[0][1] < look_times[0] - _EPS:
                        recent.popleft()
                last_t = t
                tick = grid_tick(t, self.fps)
                if previous_tick is None:  # no frame before: pretend the one a period earlier
                    previous_tick = grid_tick(t - self._clock.period, self.fps)
                tick_passed, previous_tick = tick > previous_tick, tick
                if tick_passed and self.start_s - _EPS <= t < self.end_s - _EPS:
                    waiting.append((frame, t))
                if detector.looked_at == looked_at:
                    continue  # the detector did not move on: nothing new is settled
                looked_at = detector.looked_at
            settled = detector.settled_s()
            while waiting and waiting[0][1] < settled:
                kept, kept_t = waiting.popleft()
                shot = self._shot_of(kept_t)
                while shot_starts and shot_starts[0][1] <= kept_t + _EPS:  # this tick decides them
                    first, first_t, _ = shot_starts.popleft()
                    if self._shot_of(first_t) != shot:
                        yield self._sampled(first, first_t, self._shot_of(first_t), "shot_start")
                yield self._sampled(kept, kept_t, shot, "uniform")
            # Past the end, a held shot's first tick (in the next segment) must be settled to know its shot.
            if frame is None or (settled >= self.end_s - _EPS and all(settled > e[2] for e in shot_starts)):
                for first, first_t, tick_t in shot_starts:
                    has_tick = tick_t <= last_t + _EPS and not any(first_t + _EPS < c <= tick_t + _EPS for c in cuts_seen)
                    if not has_tick:
                        yield self._sampled(first, first_t, self._shot_of(first_t), "shot_start")
                return

    def _shot_of(self, t: float) -> int:
        return sum(cut.t_s <= round(t, 6) for cut in self.cuts)  # both rounded alike

    def _scene(self, container, stream) -> Iterator[SampledFrame]:
        params = self.scene
        detector = StridedDetector(params, self._nominal_fps)  # every frame
        held: av.VideoFrame | None = None  # the frame the detector will give its verdict on next
        shot, shot_has_frame = 0, False
        last_kept: Thumb | None = None
        last_kept_t = -math.inf
        skipping = RefinedSkipping(stream.codec_context)
        for frame, _, verdict in self._detected(container, stream, detector, skipping, only_worth_a_look=True):
            verdict_frame, held = held, frame
            if verdict is None:
                continue
            if len(self.cuts) > shot:  # the verdict brought a cut inside the segment
                shot, shot_has_frame = len(self.cuts), False
            vt = verdict.t_s
            if vt >= self.end_s - _EPS:
                if not verdict.in_transition or vt >= self.end_s + params.max_transition_s:
                    return
                continue  # finish the open transition: its midpoint may still fall in this segment
            if vt < self.start_s - _EPS or verdict.in_transition or verdict.thumb.blank:
                continue
            if not shot_has_frame:
                reason = "shot_start"
            elif (
                verdict.steady
                and vt - last_kept_t >= 1 / self.fps - _EPS
                and pixel_difference(verdict.thumb, last_kept) >= params.change_distance
            ):
                reason = "content_change"
            else:
                continue
            shot_has_frame, last_kept, last_kept_t = True, verdict.thumb, vt
            yield self._sampled(verdict_frame, vt, shot, reason)

    def _keyframes(self, container, stream) -> Iterator[SampledFrame]:
        stream.codec_context.skip_frame = "NONKEY"
        previous: tuple[float, Thumb] | None = None
        shot = 0
        # Start a little early: the last non-blank keyframe before the segment is the reference for a cut at
        # start_s (pre-roll costs only a keyframe or two).
        seek_s = max(0.0, self.start_s - self.scene.max_transition_s)
        for frame, t in self._decoded(container, stream, seek_s, keyframes_only=True):
            if t >= self.end_s - _EPS:
                return
            thumb = Thumb(frame, self.scene)
            if thumb.blank:
                continue  # a black keyframe (mid-fade) neither shows anything nor starts a shot
            if previous is not None and t >= self.start_s - _EPS:
                score = hist_distance(previous[1], thumb)
                if score >= self.scene.plateau_distance:
                    self.cuts.append(_rounded(Cut(t_s=t, kind="keyframe", start_s=previous[0], end_s=t, score=score)))
                    shot += 1
            previous = (t, thumb)
            if t >= self.start_s - _EPS:
                yield self._sampled(frame, t, shot, "keyframe")

    # --- plumbing ---------------------------------------------------------------------

    def _detected(
        self,
        container,
        stream,
        detector: StridedDetector,
        skipping: RefinedSkipping | None = None,
        only_worth_a_look: bool = False,
    ):
        """(frame, t_s, the detector's verdict on the frame looked at before, if any) from the pre-roll
        on, then (None, inf, the verdict on the last one). Cuts inside the segment go to ``cuts``."""
        seek_s = max(0.0, self.start_s - self.scene.max_transition_s)
        decoded = self._decoded(container, stream, seek_s, skipping=skipping, only_worth_a_look=only_worth_a_look)
        for frame, t in itertools.chain(decoded, [(None, math.inf)]):
            verdict = detector.push(t, frame) if frame is not None else detector.finish()
            self.detected_frames = detector.looked_at
            cut = verdict.cut if verdict is not None else None
            if cut is not None and self.start_s - _EPS <= cut.t_s < self.end_s - _EPS:
                self.cuts.append(_rounded(cut))
            yield frame, t, verdict

    def _decoded(
        self,
        container,
        stream,
        seek_s: float,
        keyframes_only: bool = False,
        skipping: RefinedSkipping | None = None,
        only_worth_a_look: bool = False,
    ):
        """(frame, t_s) in presentation order from the keyframe before ``seek_s``. ``skipping``: frames no
        other frame refers to are skipped unless it needs them (see ``RefinedSkipping``); with
        ``only_worth_a_look``, of the frames decoded only those ``skipping.worth_a_look`` come out."""
        seek_before(container, stream, self._clock, seek_s)
        packets = container.demux(stream)
        if skipping is not None:
            packets = skipping.packets(packets)
        for packet in packets:
            # The empty packet at the end flushes the decoder; it must pass the keyframe filter.
            if keyframes_only and not packet.is_keyframe and packet.size:
                continue
            for frame in packet.decode():
                self.decoded_frames += 1
                t = self._clock(frame)
                if only_worth_a_look and not skipping.worth_a_look(frame):
                    continue
                yield frame, t

    def _sampled(self, frame: av.VideoFrame, t: float, shot: int, reason: str) -> SampledFrame:
        return SampledFrame(
            t_s=round(t, 6),
            frame_index=round(t * self._nominal_fps),
            shot_index=shot,
            reason=reason,
            image=upright_bgr(frame),
        )


class RefinedSkipping:
    """Decode less for shot detection: skip the frames no other frame refers to (in H.264 / HEVC with
    B-frames, a third to a half of them, and the cheapest to skip: nothing waits for them), except
    after a likely change, where every frame is decoded so that a hard cut lands on its exact frame and
    a shot of a few frames is seen whole.

    A likely change is read from the compressed stream before decoding: an inter packet at least
    ``size_ratio`` times the usual size of the large ones among the recent inter packets (their 75th
    percentile: the referenced frames, not the cheap skippable ones), i.e. a picture that cannot be
    predicted from the ones before it: a cut, a flash, a large object coming in. At a cut, x264 writes a
    keyframe or an inter frame 10-30 times the usual size. The first ``known`` inter packets, before
    that many are there to tell what is usual, are judged against those ``known``, demuxed ahead for it
    (decoding them all whole instead cost 5-8 decodes at the start of every segment); a stream with
    fewer is decoded whole. The skippable frames shown just before such a reference frame come after it
    in decoding order, so the ``after`` packets that follow it are decoded whole (8 covers x264's
    B-pyramids and HEVC's hierarchical groups of 8). Keyframes are always decoded but do not widen the
    decoding: most sit on the encoder's fixed grid, and a cut on one lands on it exactly.

    The decoder reads ``skip_frame`` per packet (frame threads included). H.264 stored as in MP4 goes
    further: a packet to skip that holds only slices no other picture refers to (their nal_ref_idc) is
    not handed to the decoder at all (``h264.may_be_left_out``). FFmpeg's own skip still takes a frame
    thread's turn, so with one skipped frame between P-frames no two P-frames were ever decoded at once;
    handed only the frames it decodes, the frame threads overlap them (scene sampling on carphone and
    camera720: a fifth faster, the same frames). A stream without B-frames has nothing to skip:
    everything is decoded, as without this. Of the frames decoded, scene sampling's detector looks at
    the I and P frames and at every frame decoded whole (``worth_a_look``).

    ``ticks`` (uniform sampling): the packets that hold the first frame at or after a tick of a grid are
    decoded too, whatever their kind, so the frames a grid picks are exactly those it picks from a full
    decode (see ``TickGrids``).
    """

    def __init__(
        self,
        codec_context,
        size_ratio: float = 3.0,
        after: int = 8,
        history: int = 48,
        known: int = 8,
        ticks: TickGrids | None = None,
    ):
        self.codec_context, self.size_ratio, self.after, self.ticks = codec_context, size_ratio, after, ticks
        self.known = known  # inter packets before their usual size means something
        self._nal_length_size = h264.nal_length_size(codec_context.name, codec_context.extradata)
        self._sizes: deque[int] = deque(maxlen=history)
        self._whole: deque[int | None] = deque(maxlen=4 * after)  # pts of the packets decoded whole lately
        self._usual: float | None = None  # the 75th percentile of the recent inter packet sizes
        self._since_usual = 0

    def worth_a_look(self, frame: av.VideoFrame) -> bool:
        """I and P frames, and every frame decoded after a likely change. Referenced B-frames elsewhere
        (x264's B-pyramid) had to be decoded for the frames that refer to them, but the detector does
        not need them: changes between I/P frames a few frames apart are steps it scales by their gap."""
        return frame.pict_type != PictureType.B or frame.pts in self._whole

    def packets(self, packets):
        packets = iter(packets)
        # What is usual is not known before ``known`` inter packets: demux that far ahead (it costs next to
        # nothing) and judge the first ones against those, rather than decode them all whole.
        first = []
        for packet in packets:
            first.append(packet)
            if packet.size and not packet.is_keyframe:
                self._sizes.append(packet.size)
                if len(self._sizes) == self.known:
                    break
        sized_ahead = len(self._sizes)
        whole_left = 0  # packets still to decode whole after a likely change
        for packet in itertools.chain(first, packets):
            if packet.size and not packet.is_keyframe:
                if self._large(packet.size):
                    whole_left = self.after + 1
                if sized_ahead:
                    sized_ahead -= 1
                else:
                    self._sizes.append(packet.size)
            # The empty packet at the end flushes the decoder: whole, so the frames it releases come out.
            whole = whole_left > 0 or not packet.size
            if self.ticks is not None and packet.size and self.ticks.first_after_a_tick(packet.pts):
                whole = True  # (every packet is shown to the grids, whole or not: they track the pts)
            self.codec_context.skip_frame = "DEFAULT" if whole else "NONREF"
            if whole_left > 0:
                self._whole.append(packet.pts)
            whole_left -= 1
            if whole or self._nal_length_size is None or not h264.may_be_left_out(packet, self._nal_length_size):
                yield packet

    def _large(self, size: int) -> bool:
        if len(self._sizes) < self.known:
            return True  # too few in the whole stream to know what is usual: decode everything
        self._since_usual += 1
        if self._usual is None or self._since_usual >= 8:  # refreshed every 8 packets: it moves slowly
            self._usual, self._since_usual = statistics.quantiles(self._sizes, n=4)[2], 0
        return size >= self.size_ratio * self._usual


class TickGrids:
    """Which packets hold the first frame at or after a tick k / rate of one of the grids, from their pts
    before decoding: those with a tick in (t of the frame shown just before, t]. Packets come in decoding
    order, so the frame shown just before may not have been demuxed yet: the one used is the latest
    shown before it among the last ``window`` packets demuxed, the real one or an earlier one, so the
    interval only widens and no frame a grid picks is missed (at worst one more is decoded; also after a
    seek, and when a pts is missing). For the frames that can be skipped it is the real one in x264's
    B-frame groups (decoding order P4 B2 b1 b3: each b comes after the frame shown before it); the
    anchors decoded ahead of the frames shown before them are reference frames, decoded anyway. The tick
    test is the samplers' own (``grid_tick``), on the times ``FrameClock`` gives frames.
    """

    def __init__(self, clock: FrameClock, rates: Sequence[float], window: int = 32):
        self.clock, self.rates, self.window = clock, tuple(rates), window
        self._sorted: list[int] = []  # the pts of the last ``window`` packets, in order
        self._demuxed: deque[int] = deque()  # the same, in demuxing order

    def first_after_a_tick(self, pts: int | None) -> bool:
        if pts is None:
            return True
        i = bisect.bisect_left(self._sorted, pts)
        before = self._sorted[i - 1] if i else None
        self._sorted.insert(i, pts)
        self._demuxed.append(pts)
        if len(self._demuxed) > self.window:
            del self._sorted[bisect.bisect_left(self._sorted, self._demuxed.popleft())]
        if before is None:
            return True
        t, t_before = self.clock.seconds(pts), self.clock.seconds(before)
        return any(grid_tick(t, rate) > grid_tick(t_before, rate) for rate in self.rates)


class FrameBudget:
    """At most ``max_frames`` frames for a segment, without ever dropping a shot for lack of room.

    A shot's first frame is admitted while there is room. Any other frame is admitted only while the room
    left exceeds what the shots still to come may need: as many cuts as the segment has had per second
    so far over the time left, plus one (e.g. a short last shot). So when the budget is short it thins the
    frames inside shots, spread over the segment, instead of cutting off its end.
    """

    def __init__(self, max_frames: int, start_s: float, end_s: float):
        self.max_frames, self.start_s, self.end_s = max_frames, start_s, end_s
        self.kept = 0
        self.shots = 0
        self.refused_shots = 0  # first frames of shots refused: more shots than max_frames

    def has_room(self, t_s: float, first_of_shot: bool) -> bool:
        """Whether a frame at ``t_s`` may be kept (a shot's first frame counts the shot)."""
        if first_of_shot:
            self.shots += 1
            if self.kept >= self.max_frames:
                self.refused_shots += 1
                return False
            return True
        return self.kept + self.reserve(t_s) < self.max_frames

    def take(self) -> None:
        self.kept += 1

    def reserve(self, t_s: float) -> int:
        """Room kept for the first frames of the shots still to come after ``t_s``."""
        elapsed = max(t_s - self.start_s, 1.0)
        remaining = max(self.end_s - t_s, 0.0) if math.isfinite(self.end_s) else 0.0
        cuts = max(self.shots - 1, 0)  # the segment's first shot did not start inside it
        return math.ceil(cuts / elapsed * remaining - 1e-9) + 1


def _rounded(cut: Cut) -> Cut:
    """The cut with its times rounded as ``SampledFrame.t_s`` is: the frame a hard cut lands on has
    exactly the cut's ``t_s`` (so ``t_s >= cut.t_s`` holds for it downstream)."""
    return cut.model_copy(update={key: round(getattr(cut, key), 6) for key in ("t_s", "start_s", "end_s")})


# Iterate it for ``SampledFrame``s, then read its ``cuts``: one signature, the sampler's own.
sample_frames = SegmentSampler
