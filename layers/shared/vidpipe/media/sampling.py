"""Streaming frame sampling over one time segment [start_s, end_s) of a video.

Every strategy seeks once, to the keyframe before the segment (minus a pre-roll
for ``uniform`` and ``scene``), and decodes forward. Frames before ``start_s``
are decoded but only feed the detectors, so a segment sees exactly what a
single pass over the whole video would see at its start. Only kept frames are
converted to full-size BGR. Memory is bounded: a generator, a few held frames,
a ring of thumbnails.

Strategies
- ``uniform``: the first frame at or after each tick of a global grid k / fps
  (k = 0, 1, ...), decoding straight through (seeking per sample is 3-6× slower).
  The shot detector looks at about ``SceneParams.detect_fps`` frames a second
  (one in 3 at 30 fps) on a grid anchored to the start of the video, so segments
  see the same frames as one pass. Hard cuts still land on their exact frame, as
  for ``scene``; gradual cuts land within a stride of where ``scene`` puts them. A
  frame comes out once no cut can still land at or before it (about 0.25 s of
  decoding later, a transition's length at most).
- ``scene``: one frame at the start of every shot (after hard cuts and after
  fades / dissolves), then more only while the content keeps changing, at most
  ``fps`` a second; nothing on static stretches, blanks or mid-transition. The
  detector looks at every frame.
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

import itertools
import math
import os
from collections import deque
from collections.abc import Iterator
from enum import StrEnum
from typing import Literal

import av
import numpy as np
from pydantic import BaseModel, ConfigDict

from vidpipe.errors import InputRejected
from vidpipe.media.decoding import FrameClock, open_video, seek_before, upright_bgr
from vidpipe.media.scenes import (
    Cut,
    SceneParams,
    StridedDetector,
    Thumb,
    detector_stride,
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
        path: str | os.PathLike,
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
        previous_tick: int | None = None
        looked_at = -1
        for frame, t, _ in self._detected(container, stream, detector):
            if frame is not None:
                tick = math.floor(t * self.fps + _EPS)
                if previous_tick is None:  # no frame before: pretend the one a period earlier
                    previous_tick = math.floor((t - self._clock.period) * self.fps + _EPS)
                tick_passed, previous_tick = tick > previous_tick, tick
                if tick_passed and self.start_s - _EPS <= t < self.end_s - _EPS:
                    waiting.append((frame, t))
                if detector.looked_at == looked_at:
                    continue  # the detector did not move on: nothing new is settled
                looked_at = detector.looked_at
            settled = detector.settled_s()
            while waiting and waiting[0][1] < settled:
                kept, kept_t = waiting.popleft()
                shot = sum(cut.t_s <= round(kept_t, 6) for cut in self.cuts)  # both rounded alike
                yield self._sampled(kept, kept_t, shot, "uniform")
            if settled >= self.end_s - _EPS:
                return

    def _scene(self, container, stream) -> Iterator[SampledFrame]:
        params = self.scene
        detector = StridedDetector(params, self._nominal_fps)  # every frame
        held: av.VideoFrame | None = None  # the frame the detector will give its verdict on next
        shot, shot_has_frame = 0, False
        last_kept: Thumb | None = None
        last_kept_t = -math.inf
        for frame, _, verdict in self._detected(container, stream, detector):
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

    def _detected(self, container, stream, detector: StridedDetector):
        """(frame, t_s, the detector's verdict on the frame looked at before, if any) from the pre-roll
        on, then (None, inf, the verdict on the last one). Cuts inside the segment go to ``cuts``."""
        decoded = self._decoded(container, stream, max(0.0, self.start_s - self.scene.max_transition_s))
        for frame, t in itertools.chain(decoded, [(None, math.inf)]):
            verdict = detector.push(t, frame) if frame is not None else detector.finish()
            self.detected_frames = detector.looked_at
            cut = verdict.cut if verdict is not None else None
            if cut is not None and self.start_s - _EPS <= cut.t_s < self.end_s - _EPS:
                self.cuts.append(_rounded(cut))
            yield frame, t, verdict

    def _decoded(self, container, stream, seek_s: float, keyframes_only: bool = False):
        """(frame, t_s) in presentation order from the keyframe before ``seek_s``."""
        seek_before(container, stream, self._clock, seek_s)
        for packet in container.demux(stream):
            # The empty packet at the end flushes the decoder; it must pass the keyframe filter.
            if keyframes_only and not packet.is_keyframe and packet.size:
                continue
            for frame in packet.decode():
                self.decoded_frames += 1
                yield frame, self._clock(frame)

    def _sampled(self, frame: av.VideoFrame, t: float, shot: int, reason: str) -> SampledFrame:
        return SampledFrame(
            t_s=round(t, 6),
            frame_index=round(t * self._nominal_fps),
            shot_index=shot,
            reason=reason,
            image=upright_bgr(frame),
        )


def _rounded(cut: Cut) -> Cut:
    """The cut with its times rounded as ``SampledFrame.t_s`` is: the frame a hard cut lands on has
    exactly the cut's ``t_s`` (so ``t_s >= cut.t_s`` holds for it downstream)."""
    return cut.model_copy(update={key: round(getattr(cut, key), 6) for key in ("t_s", "start_s", "end_s")})


# Iterate it for ``SampledFrame``s, then read its ``cuts``: one signature, the sampler's own.
sample_frames = SegmentSampler
