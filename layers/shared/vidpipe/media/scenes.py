"""Streaming shot-change detection on cheap 64×36 thumbnails.

Two signals, both computed from a thumbnail scaled by FFmpeg straight from the
decoded YUV frame (~0.2 ms a frame at 720p):

- **activity** between consecutive frames: mean absolute BGR difference, or the
  relative change of mean brightness when that is larger (a fade changes gain
  more than it changes pixels). A *hard cut* is an isolated activity spike: high
  in absolute terms, several times the frames on both sides of it (fewer times
  when the colour histogram jumps too), steps compared per unit of time so that
  unevenly spaced frames do not look like spikes. Checking the frame after the
  spike is what tells a cut from the first frame of a fade, so verdicts come out
  one frame late. The new picture must differ from each of the last few
  pictures: after a 1-2 frame flash the picture comes back, and that is no cut.
- **lagged histogram distance** D(n) between frame n and frame n−K (K ≈ 0.5 s),
  on an HSV histogram, which barely moves when textures slide (camera or object
  motion) but moves a lot when the picture is replaced. A dissolve or fade of up
  to about a second makes D rise above a threshold and stay there for a while:
  a *plateau*. The threshold adapts to the content: ``plateau_distance`` plus
  the D the content had on its own before the disturbance began (a fast pan
  raises its own bar; a van coming in then leaving is one disturbance). Its centre, (t of the first plateau frame + t of the reference
  frame of the last one) / 2, is the transition's midpoint whatever the lag.
  Blank (dark or flat) frames keep a plateau open, so fade-out → black → fade-in
  is one transition, not two. A plateau counts as a cut only if the pictures
  before and after it really differ (a flash or a whip pan that comes back to the
  same view is not a cut) and the new picture holds for ``lag_s`` (an object
  still crossing the frame does not). One that lasts longer than ``max_transition_s`` is
  sustained change (strobe lights, fast motion), not a transition: it is dropped,
  and no new plateau opens until D settles, so such footage is sampled as content.

State is a ring of K histograms, 2K recent distances and a few scalars: memory
does not grow with the video.

``StridedDetector`` feeds the detector one decoded frame in ``stride`` (uniform
sampling: about ``SceneParams.detect_fps`` a second) and still puts hard cuts on
their exact frame.
"""

from __future__ import annotations

import itertools
import math
import statistics
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from pydantic import BaseModel, ConfigDict

THUMB_SIZE = (64, 36)

# OpenCV's 8-bit BGR→HSV (hue in [0, 180), 12-bit fixed point) and BGR→grey (15-bit), bit for bit in NumPy:
# the thresholds below were tuned on them.
_SHIFT, _HALF = 12, 1 << 11
_DIVISORS = np.arange(1.0, 256.0)
_SATURATION_SCALE = np.rint(np.r_[0.0, (255 << _SHIFT) / _DIVISORS]).astype(np.int32)
_HUE_SCALE = np.rint(np.r_[0.0, (180 << _SHIFT) / (6 * _DIVISORS)]).astype(np.int32)


def _hsv_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables for ``hsv_histogram``, from OpenCV's arithmetic run once on every case (~5 ms).

    A pixel's hue and its spread (max - min of b, g, r) depend only on d1 = g - b and d2 = b - r, its
    saturation on the spread and v = max(b, g, r). Indexed by (d1 + 255) × 511 + (d2 + 255): the hue bin × 16
    (uint8) and the spread × 256 (int32); by spread × 256 + v: the saturation bin × 4 + the value bin. 1.6 MB.
    """
    n = np.arange(-255, 256, dtype=np.int32)
    b = np.broadcast_to(n[None, :], (511, 511))  # d2 = b - r, with r = 0: only the differences matter
    g = n[:, None] + n[None, :]  # d1 = g - b
    v = np.maximum(np.maximum(b, g), 0)
    spread = v - np.minimum(np.minimum(b, g), 0)
    np.minimum(spread, 255, out=spread)  # (no pixel has a larger one: those d1, d2 never occur)
    h = np.where(v == 0, g - b, np.where(v == g, b + 2 * spread, 4 * spread - g))  # v == r, v == g, v == b
    h *= _HUE_SCALE[spread]
    h += _HALF
    h >>= _SHIFT
    h %= 180
    h *= 8
    h //= 180
    h <<= 4
    spread <<= 8
    spreads, values = np.arange(256, dtype=np.int32)[:, None], np.arange(256, dtype=np.int32)[None, :]
    s = (spreads * _SATURATION_SCALE[values] + _HALF) >> _SHIFT
    saturation_value_bin = ((s >> 6) * 4 + (values >> 6)).astype(np.int32).ravel()
    return h.astype(np.uint8).ravel(), spread.ravel(), saturation_value_bin


_HUE_BIN, _SPREAD_INDEX, _SATURATION_VALUE_BIN = _hsv_tables()
_DIFFERENCE_OFFSET = 255 * 511 + 255


class SceneParams(BaseModel):
    """Detector thresholds. Distances and activities are in [0, 1]."""

    model_config = ConfigDict(frozen=True)

    spike_min_activity: float = 0.06  # a hard cut changes at least this much between two frames...
    spike_ratio: float = 3.0  # ...and this many times more than the frames on either side
    # ...or only this many times when the colours jump too: at least spike_min_hist and spike_ratio times the
    # colour steps on either side (a fade or a dissolve moves pixels and colours smoothly: no ratio there).
    spike_ratio_with_colours: float = 1.5
    spike_min_hist: float = 0.3
    lag_s: float = 0.5  # K: how far back the lagged histogram distance looks
    plateau_distance: float = 0.4  # lagged distance that opens a gradual-transition plateau
    confirm_distance: float = 0.3  # before/after distance a plateau needs to count as a cut
    max_transition_s: float = 3.0  # longer plateaus are sustained motion, not a transition
    # Real-footage traps (a van crossing the frame, a flash, a fast pan) also move the histograms; two
    # more conditions tell them from transitions:
    motion_allowance: float = 1.0  # a plateau opens at plateau_distance + this × the content's own lagged distance
    settle_distance: float = 0.25  # a gradual cut's new picture holds: distance to it lag_s later under this
    hard_confirm_distance: float = 0.2  # a hard cut differs this much from each of the pictures just before it
    hard_confirm_frames: int = 3  # ...this many, blanks skipped (a flash of fewer frames is no shot)
    change_distance: float = 0.1  # thumbnail difference from the last kept frame that is "new content"
    steady_ratio: float = 2.0  # a frame changing this many times faster than the recent median is unsteady
    # A blank is a flat frame near black or white (fades, dips to white). A flat blue sky is not blank.
    blank_max_std: float = 6.0  # luma spread (0-255) under which a frame is flat
    blank_luma_margin: float = 24.0  # ...and its mean luma within this of 0 or 255
    # Uniform sampling looks at one decoded frame in round(video fps / detect_fps) (scene sampling: every frame).
    detect_fps: float = 10.0


class Cut(BaseModel):
    """A shot change. ``t_s`` is the first frame of the new shot (hard) or the
    transition's midpoint (gradual); ``start_s``/``end_s`` bound the change.
    ``keyframe`` cuts come from keyframe-only sampling: the change happened
    somewhere between two keyframes."""

    t_s: float
    kind: Literal["hard", "gradual", "keyframe"]
    start_s: float
    end_s: float
    score: float  # histogram distance between the pictures either side


_scalers = threading.local()


def _thumbnail(frame: av.VideoFrame) -> np.ndarray:
    """The frame scaled to THUMB_SIZE BGR by FFmpeg (area averaging, from the YUV planes).

    One slice thread: with the default (one per core) the scaler's threads compete with the decoder's
    for the cores; thumbnailing every frame of a 720p30 clip then took 1.46× a full decode instead of
    1.35×. A scaler of its own (per thread) rather than ``frame.reformat``'s: that one also makes the
    full-size BGR frames, and each switch between the two sizes rebuilds it (~0.7 ms at 720p).
    """
    scaler = getattr(_scalers, "thumbnail", None)
    if scaler is None:
        scaler = _scalers.thumbnail = VideoReformatter()
    small = scaler.reformat(frame, THUMB_SIZE[0], THUMB_SIZE[1], "bgr24", interpolation="AREA", threads=1)
    return small.to_ndarray()


class Thumb:
    """The features of one frame."""

    __slots__ = ("pixels", "hist", "luma", "blank")

    def __init__(self, frame: av.VideoFrame, params: SceneParams):
        bgr = _thumbnail(frame)
        b, g, r = _channels(bgr)
        self.hist = _hsv_histogram(b, g, r)
        self.pixels = bgr.astype(np.float32)
        grey = (b * 3735 + g * 19235 + r * 9798 + (1 << 14)) >> 15
        self.luma = float(grey.sum()) / grey.size  # grey.mean() exactly (an exact integer sum), without its overhead
        near_black_or_white = min(self.luma, 255 - self.luma) < params.blank_luma_margin
        self.blank = near_black_or_white and float(grey.std()) < params.blank_max_std


def hsv_histogram(bgr: np.ndarray) -> np.ndarray:
    """Normalised 8×4×4 (hue × saturation × value) histogram of a BGR uint8 image, flattened."""
    return _hsv_histogram(*_channels(bgr))


def _channels(bgr: np.ndarray) -> np.ndarray:
    """b, g and r of a BGR uint8 image as three contiguous int32 rows."""
    return bgr.reshape(-1, 3).T.astype(np.int32, order="C")


def _hsv_histogram(b: np.ndarray, g: np.ndarray, r: np.ndarray) -> np.ndarray:
    # Per pixel: two table lookups instead of OpenCV's arithmetic (a third of the time on a 64×36 thumbnail).
    index = g - b
    index *= 511
    index += b
    index -= r
    index += _DIFFERENCE_OFFSET
    saturation_value = _SPREAD_INDEX.take(index)
    saturation_value += np.maximum(np.maximum(b, g), r)
    bins = _SATURATION_VALUE_BIN.take(saturation_value)
    bins += _HUE_BIN.take(index)
    counts = np.bincount(bins, minlength=128).astype(np.float32)
    return counts / counts.sum()


def hist_distance(a: Thumb, b: Thumb) -> float:
    """Total-variation distance of the HSV histograms: 0 same colours, 1 disjoint."""
    return 0.5 * float(np.abs(a.hist - b.hist).sum())


def pixel_difference(a: Thumb, b: Thumb) -> float:
    difference = np.abs(a.pixels - b.pixels)
    # np.mean's own arithmetic (a float32 sum, divided in float64, rounded to float32) without its Python overhead.
    return float(np.float32(float(difference.sum()) / difference.size)) / 255.0


def activity(a: Thumb, b: Thumb) -> float:
    gain = abs(a.luma - b.luma) / max(a.luma, b.luma, 16.0)
    return max(pixel_difference(a, b), gain)


@dataclass
class Verdict:
    """What the detector knows about one frame (given one frame after it)."""

    t_s: float
    thumb: Thumb
    cut: Cut | None  # a cut whose new shot begins at this frame
    in_transition: bool  # inside an open plateau: a blend or a blank, not a picture to keep
    steady: bool  # changing no faster than the frames before it (not the onset of a fade, a flash...)


@dataclass
class _Held:
    t_s: float
    thumb: Thumb
    activity: float
    hist_step: float  # histogram distance from the frame before
    gap: float  # seconds since the frame before (0: none)
    in_transition: bool
    cut: Cut | None


@dataclass
class _Plateau:
    start_s: float
    before: Thumb | None  # the last non-blank picture before the transition
    first_mid_s: float  # t of the first plateau frame; midpoint = (this + reference t of the last) / 2
    last_ref_s: float


@dataclass
class _Episode:
    """A run of frames whose lagged distance is high, with dips shorter than lag_s."""

    baseline: float  # the content's own lagged distance before it began
    start_s: float  # t of the reference frame when it began: the picture before it
    before: Thumb
    last_high_s: float


@dataclass
class _Pending:
    """A gradual cut waiting to see that its new picture holds (a van still crossing does not)."""

    cut: Cut
    before: Thumb
    after: Thumb  # the picture when the plateau closed
    confirm_at_s: float


class ShotDetector:
    """Feed frames in presentation order with ``push``; each call returns the
    verdict on the *previous* frame. ``finish`` returns the last one.

    Frames need not be evenly spaced (scene sampling skips frames no other frame
    refers to): the lag is a time, ``lag_s`` rounded to whole periods of ``fps``.
    """

    def __init__(self, params: SceneParams, fps: float):
        self.params = params
        self.lag = max(1, round(params.lag_s * fps))
        self._lag_s = self.lag / fps
        self._eps = 0.25 / fps
        self._ring: deque[tuple[float, Thumb]] = deque()  # the frames of the last lag_s, and the one before
        self._recent_activity: deque[float] = deque(maxlen=self.lag)
        self._last_hist_step = self._last_gap = 0.0  # of the frame released last
        self._distances: deque[tuple[float, float]] = deque()  # (t, lagged distance) of the last 2 × lag_s
        self._pictures: deque[Thumb] = deque(maxlen=params.hard_confirm_frames)  # the latest non-blank frames
        self._last_picture: Thumb | None = None  # latest non-blank frame
        self._plateau: _Plateau | None = None
        self._pending: _Pending | None = None
        self._episode: _Episode | None = None
        self._sustained_change = False  # a plateau ran too long; wait for D to settle before opening another
        self._held: _Held | None = None
        self._last_t = -math.inf
        self.last_activity = 0.0  # between the last two frames pushed

    def push(self, t_s: float, thumb: Thumb) -> Verdict | None:
        act = activity(thumb, self._ring[-1][1]) if self._ring else 0.0
        step = hist_distance(thumb, self._ring[-1][1]) if self._ring else 0.0
        self.last_activity = act
        gap = t_s - self._last_t if self._ring else 0.0
        verdict = self._release(next_activity=act, next_hist_step=step, next_gap=gap)
        if verdict is not None and verdict.cut is not None and verdict.cut.kind == "hard":
            # The ring straddles the cut: restart it so the lagged distance does not see a second "transition".
            self._ring.clear()
            self._distances.clear()
            self._plateau = self._pending = self._episode = None
            self._ring.append((verdict.t_s, verdict.thumb))
        self._ring.append((t_s, thumb))
        while len(self._ring) > 2 and self._ring[1][0] <= t_s - self._lag_s + self._eps:
            self._ring.popleft()  # ring[0]: the newest frame at least lag_s old
        self._last_t = t_s
        cut = self._update_plateau(t_s, thumb)
        pending = self._pending is not None
        if pending and cut is None and t_s >= self._pending.confirm_at_s - self._eps:
            cut, pending = self._settle(thumb), False
        self._held = _Held(t_s, thumb, act, step, gap, self._plateau is not None or pending, cut)
        if not thumb.blank:
            self._last_picture = thumb
        return verdict

    def finish(self) -> Verdict | None:
        self._last_t = math.inf
        if self._pending is not None and self._held is not None and self._held.cut is None:
            # The video ends before lag_s has passed: the last frame is all there is to judge the new picture by.
            self._held.cut = self._settle(self._held.thumb)
            self._held.in_transition = False
        return self._release(next_activity=0.0, next_hist_step=0.0, next_gap=0.0)

    def settled_s(self) -> float:
        """Every cut found from now on will have a ``t_s`` at or after this time.

        A hard cut is at the earliest on the frame held for its verdict. A gradual
        cut is the one waiting for its new picture to hold, or the one the held frame
        closed, or the midpoint of the open plateau, or of one that opens later with a
        reference frame no older than the ring's oldest.
        """
        if not self._ring or self._last_t == math.inf:
            return self._last_t
        earliest = (self._last_t + self._ring[0][0]) / 2
        if self._plateau is not None:
            earliest = min(earliest, (self._plateau.first_mid_s + self._plateau.last_ref_s) / 2)
        if self._pending is not None:
            earliest = min(earliest, self._pending.cut.t_s)
        if self._held is not None and self._held.cut is not None:
            earliest = min(earliest, self._held.cut.t_s)
        return math.floor(earliest * 1000) / 1000  # gradual cut times are rounded to the millisecond

    def _release(self, next_activity: float, next_hist_step: float, next_gap: float) -> Verdict | None:
        held, self._held = self._held, None
        if held is None:
            return None
        p = self.params
        before_activity = self._recent_activity[-1] if self._recent_activity else 0.0
        typical = statistics.median(self._recent_activity) if self._recent_activity else 0.0
        self._recent_activity.append(held.activity)
        cut, in_transition = held.cut, held.in_transition
        before_step, self._last_hist_step = self._last_hist_step, held.hist_step
        before_gap, self._last_gap = self._last_gap, held.gap
        # Frames may be unevenly spaced (scene sampling skips some): motion and fades change a frame
        # in proportion to the time since the one before, a cut does not. Neighbours count at the held gap.
        before_activity, before_step = (_at_gap(x, before_gap, held.gap) for x in (before_activity, before_step))
        next_activity, next_hist_step = (_at_gap(x, next_gap, held.gap) for x in (next_activity, next_hist_step))
        # Pixels or colours: on sparse frames (a stride, skipped frames) motion lifts the pixel steps on either
        # side of a cut between two similar moving shots, but not the colour steps.
        pixel_ratio = held.activity / max(before_activity, next_activity, 1e-9)
        colour_jump = held.hist_step >= p.spike_min_hist and held.hist_step >= p.spike_ratio * max(
            before_step, next_hist_step
        )
        is_spike = held.activity >= p.spike_min_activity and (
            pixel_ratio >= p.spike_ratio or (colour_jump and pixel_ratio >= p.spike_ratio_with_colours)
        )
        before = self._ring[-2] if len(self._ring) >= 2 else None
        # A cut *to* black starts a fade-like transition (the plateau handles it), not a new shot. The new
        # picture must differ from each of the last few pictures: after a flash (or an object flung past the
        # lens) the picture comes back to one seen a frame or two before.
        if (
            cut is None
            and is_spike
            and before is not None
            and not held.thumb.blank
            and all(hist_distance(seen, held.thumb) >= p.hard_confirm_distance for seen in self._pictures)
        ):
            cut = Cut(t_s=held.t_s, kind="hard", start_s=before[0], end_s=held.t_s,
                      score=hist_distance(before[1], held.thumb))
            in_transition = False
        if not held.thumb.blank:
            self._pictures.append(held.thumb)
        steady = cut is not None or held.activity <= max(p.steady_ratio * typical, 0.01)
        return Verdict(t_s=held.t_s, thumb=held.thumb, cut=cut, in_transition=in_transition, steady=steady)

    def _baseline(self, t_s: float) -> float:
        """The median lagged distance between 2 × lag_s and lag_s ago: the content's own motion, measured
        before a transition that may be starting now could move it."""
        older = [d for t, d in self._distances if t <= t_s - self._lag_s + self._eps]
        return statistics.median(older) if older else 0.0

    def _update_plateau(self, t_s: float, thumb: Thumb) -> Cut | None:
        p = self.params
        ref_t, ref = self._ring[0]
        if ref_t > t_s - self._lag_s + self._eps:
            return None  # less than lag_s of frames yet
        distance = hist_distance(thumb, ref)
        baseline = self._baseline(t_s)
        self._distances.append((t_s, distance))
        while self._distances[0][0] < t_s - 2 * self._lag_s - self._eps:
            self._distances.popleft()
        if distance >= p.plateau_distance:
            # One disturbance (a van coming in, then leaving) is judged against the motion from before it
            # began, even if the distance dips for less than lag_s in between.
            if self._episode is None or t_s - self._episode.last_high_s > self._lag_s + self._eps:
                self._episode = _Episode(baseline=baseline, start_s=ref_t, before=ref, last_high_s=t_s)
            self._episode.last_high_s = t_s
        episode_baseline = self._episode.baseline if self._episode is not None else baseline
        opens = distance >= p.plateau_distance + p.motion_allowance * episode_baseline
        if (self._plateau is not None and distance >= p.plateau_distance) or opens or thumb.blank or ref.blank:
            if self._sustained_change:
                return None
            if self._plateau is None:
                # The reference frame is lag_s back: usually still before the transition began.
                before = self._last_picture if ref.blank else ref
                start_s = ref_t
                episode = self._episode
                if episode is not None and episode.start_s < start_s and not episode.before.blank:
                    before, start_s = episode.before, episode.start_s  # from before the disturbance began
                if self._pending is not None:  # the picture did not hold: the same change goes on
                    before, start_s = self._pending.before, self._pending.cut.start_s
                    self._pending = None
                self._plateau = _Plateau(start_s=start_s, before=before, first_mid_s=t_s, last_ref_s=ref_t)
            self._plateau.last_ref_s = ref_t
            if t_s - self._plateau.start_s > p.max_transition_s:
                self._plateau, self._sustained_change = None, True
            return None
        self._sustained_change = False
        plateau, self._plateau = self._plateau, None
        if plateau is None or plateau.before is None:  # before is None: e.g. the video opens on black
            return None
        score = hist_distance(plateau.before, thumb)
        if score < p.confirm_distance:
            return None  # a flash, or motion that came back to the same view
        midpoint = (plateau.first_mid_s + plateau.last_ref_s) / 2
        cut = Cut(t_s=round(midpoint, 3), kind="gradual", start_s=plateau.start_s, end_s=t_s, score=score)
        self._pending = _Pending(cut=cut, before=plateau.before, after=thumb, confirm_at_s=t_s + self._lag_s)
        return None

    def _settle(self, thumb: Thumb) -> Cut | None:
        """The pending gradual cut if its new picture held (and still differs from the one before)."""
        pending, self._pending = self._pending, None
        p = self.params
        if hist_distance(pending.after, thumb) >= p.settle_distance:
            return None  # still changing: something crossed the frame
        if hist_distance(pending.before, thumb) < p.confirm_distance:
            return None
        return pending.cut


def _at_gap(change: float, gap: float, held_gap: float) -> float:
    """A change seen over ``gap`` seconds, scaled to ``held_gap`` (as is when either is unknown)."""
    return change * held_gap / gap if gap > 0 and held_gap > 0 else change


def detector_stride(fps: float, params: SceneParams) -> int:
    """Look at one frame in this many for at most about ``params.detect_fps`` frames a second."""
    return max(1, round(fps / params.detect_fps))


def grid_tick(t_s: float, rate: float) -> int:
    """The tick k of the grid k / rate at or before ``t_s``: the samplers' and the detector's grids all
    count this way (1e-6 s of slack: frame times are exact rationals turned into floats), so a frame
    picked "first at or after a tick" is the same frame whichever of them picks it."""
    return math.floor(t_s * rate + 1e-6)


class StridedDetector:
    """A ``ShotDetector`` that looks at one decoded frame in ``stride``.

    ``push`` every decoded frame in presentation order; it returns the detector's
    verdict on the previous frame looked at, or None. The frames looked at are the
    first at or after each tick of the global grid k × stride / fps, so a segment
    decoded on its own looks at the same frames as one pass over the whole video.
    The lagged distance still looks ``lag_s`` back and transitions still span many
    frames looked at, so gradual cuts move by a stride at most. A hard cut lands on
    the exact frame: when the change between two frames looked at could be a spike,
    the frames between them are thumbnailed too (a few per cut) and the cut goes to
    the largest step among them. With ``stride`` 1 this is the plain detector.
    """

    def __init__(self, params: SceneParams, fps: float, stride: int = 1):
        self.params, self.stride = params, stride
        self.rate = fps / stride  # frames looked at per second: the first at or after each tick k / rate
        self._period = 1.0 / fps
        self.detector = ShotDetector(params, self.rate)
        self.looked_at = 0  # frames pushed to the detector
        self._tick: int | None = None  # the grid tick of the last decoded frame
        self._last: tuple[float, Thumb] | None = None  # the last frame looked at
        self._gap: list[tuple[float, av.VideoFrame]] = []  # decoded since then (stride - 1 frames at most)
        self._after_previous = -math.inf  # t of the first frame after the frame looked at before the last
        self._located: tuple[float, Cut] | None = None  # (t of a frame looked at, the exact hard cut if it is one)

    def push(self, t_s: float, frame: av.VideoFrame) -> Verdict | None:
        if self.stride == 1:
            return self._look(t_s, frame)
        tick = grid_tick(t_s, self.rate)
        if self._tick is None:  # no frame before: pretend the one a period earlier
            self._tick = grid_tick(t_s - self._period, self.rate)
        ticked, self._tick = tick > self._tick, tick
        if ticked:
            return self._look(t_s, frame)
        if self._last is not None:  # (before the first frame looked at, nothing to place a cut against)
            self._gap.append((t_s, frame))
        return None

    def finish(self) -> Verdict | None:
        """The verdict on the last frame looked at. The video's last few frames after it
        (less than a stride) are not looked at."""
        self._gap, self._after_previous = [], math.inf
        return self._exact(self.detector.finish())

    def settled_s(self) -> float:
        """As ``ShotDetector.settled_s``: a hard cut found on the frame held for its verdict may be
        placed on any frame after the frame looked at before it."""
        return min(self.detector.settled_s(), self._after_previous)

    def _look(self, t_s: float, frame: av.VideoFrame) -> Verdict | None:
        thumb = Thumb(frame, self.params)
        self.looked_at += 1
        before_activity = self.detector.last_activity
        verdict = self._exact(self.detector.push(t_s, thumb))
        act, p = self.detector.last_activity, self.params
        # The detector's spike test as far as it goes yet (the step after this frame is still to come).
        if self._gap and act >= p.spike_min_activity and act >= p.spike_ratio * before_activity:
            self._located = (t_s, self._locate(thumb, t_s))
        self._after_previous = self._gap[0][0] if self._gap else t_s
        self._last, self._gap = (t_s, thumb), []
        return verdict

    def _locate(self, thumb: Thumb, t_s: float) -> Cut:
        """The largest step between consecutive frames from the last frame looked at to this one."""
        frames = [self._last, *((t, Thumb(f, self.params)) for t, f in self._gap), (t_s, thumb)]
        steps = [activity(a[1], b[1]) for a, b in itertools.pairwise(frames)]
        i = steps.index(max(steps))
        (before_t, before), (cut_t, after) = frames[i], frames[i + 1]
        if after.blank:  # the picture went dark in between: leave the cut on the frame looked at
            (before_t, before), (cut_t, after) = self._last, (t_s, thumb)
        return Cut(t_s=cut_t, kind="hard", start_s=before_t, end_s=cut_t, score=hist_distance(before, after))

    def _exact(self, verdict: Verdict | None) -> Verdict | None:
        cut = verdict.cut if verdict is not None else None
        if cut is not None and cut.kind == "hard" and self._located is not None and self._located[0] == cut.t_s:
            verdict.cut = self._located[1]
        return verdict
