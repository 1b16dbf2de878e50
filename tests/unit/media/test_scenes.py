"""Scene-adaptive sampling: cuts against the ground truth, frames per shot."""

import itertools
import math

import av
import cv2
import numpy as np
import pytest

from vidpipe.media import scenes
from vidpipe.media.sampling import sample_frames
from vidpipe.media.scenes import SceneParams, ShotDetector, Thumb, hsv_histogram
from vidpipe_local import samples


@pytest.fixture(scope="module")
def uniform_run(cuts_and_fade):
    sampler = sample_frames(cuts_and_fade.path, "uniform", fps=1.0)
    frames = list(sampler)
    return frames, sampler.cuts


@pytest.fixture(scope="module")
def scene_run(cuts_and_fade):
    sampler = sample_frames(cuts_and_fade.path, "scene", fps=1.0)
    frames = list(sampler)
    return frames, sampler.cuts


def test_given_two_hard_cuts_and_a_fade_when_sampled_by_scene_then_each_is_found_within_half_a_second(
    cuts_and_fade, scene_run
):
    _, cuts = scene_run

    assert len(cuts) == len(cuts_and_fade.transitions) == 3
    for cut, truth in zip(cuts, cuts_and_fade.transitions, strict=True):
        assert abs(cut.t_s - truth.mid_s) <= 0.5, (cut, truth)
    assert [c.kind for c in cuts] == ["hard", "gradual", "hard"]


def test_given_a_cross_dissolve_when_sampled_by_scene_then_one_gradual_cut_is_found_at_its_middle(dissolve):
    sampler = sample_frames(dissolve.path, "scene")
    frames = list(sampler)

    assert [c.kind for c in sampler.cuts] == ["gradual"]
    assert sampler.cuts[0].t_s == pytest.approx(dissolve.transitions[0].mid_s, abs=0.5)
    assert {f.shot_index for f in frames} == {0, 1}


def test_given_four_shots_when_sampled_by_scene_then_every_shot_has_a_frame_numbered_in_order(
    cuts_and_fade, scene_run
):
    frames, _ = scene_run

    for number, shot in enumerate(cuts_and_fade.shots):
        inside = [f for f in frames if shot.start_s <= f.t_s < shot.end_s]
        assert inside, f"no frame in shot {number} {shot}"
        assert {f.shot_index for f in inside} == {number}
    assert [f.reason for f in frames if f.reason == "shot_start"] == ["shot_start"] * 4


def test_given_a_static_shot_when_sampled_by_scene_then_it_gets_one_frame_and_a_moving_shot_gets_more(
    cuts_and_fade, scene_run
):
    frames, _ = scene_run
    static, panning = cuts_and_fade.shots[2], cuts_and_fade.shots[3]
    assert static.static

    assert len([f for f in frames if static.start_s <= f.t_s < static.end_s]) == 1
    assert len([f for f in frames if panning.start_s <= f.t_s < panning.end_s]) >= 2


def test_given_a_fade_to_black_when_sampled_by_scene_then_no_dark_or_half_faded_frame_is_kept(cuts_and_fade, scene_run):
    frames, _ = scene_run
    fade = cuts_and_fade.transitions[1]

    assert not [f.t_s for f in frames if fade.start_s <= f.t_s < fade.end_s]
    assert min(float(np.mean(f.image)) for f in frames) > 40


def test_given_a_content_change_rate_when_sampled_by_scene_then_frames_of_one_shot_are_at_least_that_far_apart(
    cuts_and_fade,
):
    frames = list(sample_frames(cuts_and_fade.path, "scene", fps=0.5))

    for earlier, later in itertools.pairwise(frames):
        if later.shot_index == earlier.shot_index:
            assert later.t_s - earlier.t_s >= 2.0 - 1e-6


@pytest.mark.parametrize("boundary", [3.0, 6.0, 7.5])
def test_given_segments_split_anywhere_when_sampled_by_scene_then_their_cuts_stitch_into_the_whole_videos(
    cuts_and_fade, scene_run, boundary
):
    _, whole_cuts = scene_run
    first = sample_frames(cuts_and_fade.path, "scene", 0, boundary)
    second = sample_frames(cuts_and_fade.path, "scene", boundary, 12)
    list(first)
    second_frames = list(second)

    assert [c.t_s for c in first.cuts + second.cuts] == [c.t_s for c in whole_cuts]
    # Global shot number = the cuts of earlier segments + the segment's own shot index.
    stitched = [len(first.cuts) + f.shot_index for f in second_frames]
    expected = [sum(c.t_s <= f.t_s for c in whole_cuts) for f in second_frames]
    assert stitched == expected


def _hue_cycling_frames(seconds: float, fps: int):
    """A picture whose colours turn all the way round every second (stage lights)."""
    ramp = np.tile(np.linspace(0, 40, 64, dtype=np.float32), (36, 1))
    for n in range(int(seconds * fps)):
        hsv = np.stack([(ramp + n * 180 / fps) % 180, np.full_like(ramp, 200), np.full_like(ramp, 200)], axis=2)
        yield n / fps, av.VideoFrame.from_ndarray(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR), format="bgr24")


def test_given_colours_that_never_stop_changing_when_detected_then_no_cut_is_made_and_frames_stay_sampleable():
    params, fps = SceneParams(), 15
    detector = ShotDetector(params, fps)
    verdicts = [detector.push(t, Thumb(frame, params)) for t, frame in _hue_cycling_frames(10, fps)]
    verdicts = [v for v in verdicts + [detector.finish()] if v is not None]

    assert [v.cut for v in verdicts if v.cut] == []
    after_first_transition_window = [v for v in verdicts if v.t_s > params.max_transition_s + params.lag_s]
    assert all(not v.in_transition for v in after_first_transition_window)


def test_given_two_hard_cuts_and_a_fade_when_sampled_uniformly_then_the_same_cuts_are_found_and_number_the_shots(
    cuts_and_fade, uniform_run, scene_run
):
    frames, cuts = uniform_run

    assert [c.kind for c in cuts] == ["hard", "gradual", "hard"]
    for cut, truth in zip(cuts, cuts_and_fade.transitions, strict=True):
        assert abs(cut.t_s - truth.mid_s) <= 0.5, (cut, truth)
    # Scene sampling's detector looks at every frame, uniform's at one in 2 here (15 fps): the hard cuts are on
    # the same frames, a gradual cut's midpoint moves by a stride at most.
    scene_cuts = scene_run[1]
    assert [c.t_s for c in cuts if c.kind == "hard"] == [c.t_s for c in scene_cuts if c.kind == "hard"]
    assert [c.t_s for c in cuts] == pytest.approx([c.t_s for c in scene_cuts], abs=2 / 15 + 1e-6)
    assert [f.t_s for f in frames] == [float(s) for s in range(12)]
    assert [f.shot_index for f in frames] == [sum(c.t_s <= f.t_s for c in cuts) for f in frames]
    assert [f.shot_index for f in frames if f.t_s in (2.0, 3.0, 10.0)] == [0, 1, 3]  # hard cuts at 3.0 and 9.0


@pytest.mark.parametrize("boundary", [3.0, 6.0, 7.5])
def test_given_segments_split_anywhere_when_sampled_uniformly_then_their_cuts_stitch_into_the_whole_videos(
    cuts_and_fade, uniform_run, boundary
):
    whole_frames, whole_cuts = uniform_run
    first = sample_frames(cuts_and_fade.path, "uniform", 0, boundary)
    second = sample_frames(cuts_and_fade.path, "uniform", boundary, 12)
    first_frames, second_frames = list(first), list(second)

    assert [c.t_s for c in first.cuts + second.cuts] == [c.t_s for c in whole_cuts]
    stitched = [f.shot_index for f in first_frames] + [len(first.cuts) + f.shot_index for f in second_frames]
    assert stitched == [f.shot_index for f in whole_frames]


def _decoded(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            yield float(frame.pts * stream.time_base), frame


def test_given_the_detector_says_how_far_it_is_settled_then_no_cut_found_later_lands_before_that(
    cuts_and_fade, dissolve
):
    params = SceneParams()
    for truth in (cuts_and_fade, dissolve):
        detector, settled, found = ShotDetector(params, 15), -math.inf, 0
        for t, frame in [*_decoded(truth.path), (None, None)]:
            verdict = detector.push(t, Thumb(frame, params)) if frame is not None else detector.finish()
            if verdict is not None and verdict.cut is not None:
                assert verdict.cut.t_s >= settled, (verdict.cut, settled)
                found += 1
            settled = max(settled, detector.settled_s())
            assert frame is None or settled <= t
        assert found == len(truth.transitions) and settled == math.inf


def test_given_any_colours_when_histogrammed_then_the_bins_are_opencvs_8_bit_hsv_histogram():
    every_colour = np.arange(2**24, dtype=np.uint32).view(np.uint8).reshape(4096, 4096, 4)[..., :3]
    rng = np.random.default_rng(3)
    thumbnails = [rng.integers(0, 256, (36, 64, 3), dtype=np.uint8) for _ in range(20)]
    images = [np.ascontiguousarray(every_colour), *thumbnails]

    for image in images:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        counts = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        assert np.array_equal(hsv_histogram(image), counts / counts.sum())


def test_given_a_frame_when_thumbnailed_then_its_luma_is_opencvs_grey(cuts_and_fade):
    params = SceneParams()
    for _, frame in itertools.islice(_decoded(cuts_and_fade.path), 0, 180, 20):
        thumb = Thumb(frame, params)
        grey = cv2.cvtColor(thumb.pixels.astype(np.uint8), cv2.COLOR_BGR2GRAY)
        assert thumb.luma == float(grey.mean())


def _count_detector_work(monkeypatch) -> tuple[list[float], list[int]]:
    """(t of every frame pushed to a ShotDetector, one entry per thumbnail made)."""
    pushed, thumbnails = [], []
    push, thumbnail = ShotDetector.push, scenes._thumbnail

    def counting_push(self, t_s, thumb):
        pushed.append(t_s)
        return push(self, t_s, thumb)

    def counting_thumbnail(frame):
        thumbnails.append(1)
        return thumbnail(frame)

    monkeypatch.setattr(ShotDetector, "push", counting_push)
    monkeypatch.setattr(scenes, "_thumbnail", counting_thumbnail)
    return pushed, thumbnails


def test_given_a_30_fps_clip_when_sampled_uniformly_then_the_detector_sees_one_frame_in_3_and_still_finds_every_cut(
    cuts_off_the_detector_grid, monkeypatch
):
    truth = cuts_off_the_detector_grid
    scene = sample_frames(truth.path, "scene")  # its detector looks at every frame
    scene_frames = list(scene)
    pushed, thumbnails = _count_detector_work(monkeypatch)

    sampler = sample_frames(truth.path, "uniform", fps=30.0)  # every frame out, each with its shot index
    frames = list(sampler)

    assert sampler.decoded_frames == len(frames) == truth.frame_count == 360
    assert len(pushed) == sampler.detected_frames == 120  # 10 a second, not 30
    assert [round(t * 30) for t in pushed] == list(range(0, 360, 3))  # the grid starts at frame 0
    # Plus the 2 frames in between where a step could be a cut (the two cuts, the fade's ends): a few.
    assert len(thumbnails) <= 1.1 * len(pushed)
    # Hard cuts on frames 91 and 272 (off the grid) land exactly there, as when every frame is looked at.
    assert [c.kind for c in sampler.cuts] == ["hard", "gradual", "hard"]
    hard = [c for c in sampler.cuts if c.kind == "hard"]
    assert [round(c.t_s * 30, 3) for c in hard] == [91, 272]
    assert [frames[91].t_s, frames[272].t_s] == [c.t_s for c in hard]  # the frame a cut lands on has its time
    assert {c.t_s for c in hard} <= {f.t_s for f in scene_frames if f.reason == "shot_start"}
    assert [c.model_dump() for c in hard] == [c.model_dump() for c in scene.cuts if c.kind == "hard"]
    for cut, transition in zip(sampler.cuts, truth.transitions, strict=True):
        assert abs(cut.t_s - transition.mid_s) <= 0.5, (cut, transition)
    assert sampler.cuts[1].t_s == pytest.approx(scene.cuts[1].t_s, abs=3 / 30 + 1e-6)
    shots = {f.frame_index: f.shot_index for f in frames}
    assert (shots[90], shots[91], shots[271], shots[272]) == (0, 1, 2, 3)
    assert [f.shot_index for f in frames] == [sum(c.t_s <= f.t_s for c in sampler.cuts) for f in frames]


@pytest.mark.parametrize("boundaries", [(0, 3.05, 12), (0, 3.0, 6.1, 9.07, 12), (0, 4.5, 7.7, 12)])
def test_given_a_30_fps_clip_split_into_segments_when_sampled_uniformly_then_they_stitch_into_one_pass(
    cuts_off_the_detector_grid, monkeypatch, boundaries
):
    path = cuts_off_the_detector_grid.path
    whole = sample_frames(path, "uniform", fps=5.0)
    whole_frames = list(whole)
    pushed, _ = _count_detector_work(monkeypatch)

    segments = [sample_frames(path, "uniform", a, b, fps=5.0) for a, b in itertools.pairwise(boundaries)]
    pieces = [list(segment) for segment in segments]

    assert {round(t * 30) % 3 for t in pushed} == {0}  # segments look at the frames one pass looks at
    assert [c.model_dump() for s in segments for c in s.cuts] == [c.model_dump() for c in whole.cuts]
    assert [f.t_s for piece in pieces for f in piece] == [f.t_s for f in whole_frames]
    stitched, earlier_cuts = [], 0
    for segment, piece in zip(segments, pieces, strict=True):
        stitched += [earlier_cuts + f.shot_index for f in piece]
        earlier_cuts += len(segment.cuts)
    assert stitched == [f.shot_index for f in whole_frames]


# --- real-footage traps, on small clips (25 fps) -----------------------------------------------

_TRAP_SIZE, _TRAP_FPS = (160, 90), 25


@pytest.fixture(scope="module")
def object_crossing(tmp_path_factory):
    """One 4 s shot panning 2 px a frame (320×180) that a large dark object (a van close to the camera) crosses
    in 1 s, then a cut at 4.0 s."""
    shots = [samples.ShotSpec(duration_s=4.0, seed=301, crossing=(1.0, 1.0)), samples.ShotSpec(duration_s=1.0, seed=302)]
    path = tmp_path_factory.mktemp("traps") / "crossing.mp4"
    return samples.make_video(path, shots, fps=_TRAP_FPS, size=(320, 180))


@pytest.fixture(scope="module")
def flash_and_pan(tmp_path_factory):
    """A shot with a 2-frame white flash at 1.5 s, a cut at 3.0 s, then a pan of 7 px a frame (a frame's
    width in under a second)."""
    shots = [samples.ShotSpec(duration_s=3.0, seed=303, flash_s=1.5),
             samples.ShotSpec(duration_s=3.0, seed=304, motion=(7.0, 1.0))]
    path = tmp_path_factory.mktemp("traps") / "flash_pan.mp4"
    return samples.make_video(path, shots, fps=_TRAP_FPS, size=_TRAP_SIZE)


@pytest.fixture(scope="module")
def short_shots(tmp_path_factory):
    """Cuts at 2.0, 2.12 and 4.12 s: a shot of 3 frames, and a last shot of 8 frames (0.32 s)."""
    frame = 1 / _TRAP_FPS
    shots = [samples.ShotSpec(duration_s=2.0, seed=311), samples.ShotSpec(duration_s=3 * frame, seed=312),
             samples.ShotSpec(duration_s=2.0, seed=313), samples.ShotSpec(duration_s=8 * frame, seed=314)]
    path = tmp_path_factory.mktemp("traps") / "short_shots.mp4"
    return samples.make_video(path, shots, fps=_TRAP_FPS, size=_TRAP_SIZE)


@pytest.mark.parametrize("strategy", ["scene", "uniform"])
def test_given_a_large_object_crossing_the_frame_inside_a_shot_when_sampled_then_only_the_real_cut_is_found(
    object_crossing, strategy
):
    sampler = sample_frames(object_crossing.path, strategy, fps=1.0)
    list(sampler)

    assert [c.t_s for c in sampler.cuts] == object_crossing.hard_cuts_s == [4.0]


@pytest.mark.parametrize("strategy", ["scene", "uniform"])
def test_given_a_two_frame_flash_and_a_fast_pan_when_sampled_then_neither_is_a_cut(flash_and_pan, strategy):
    sampler = sample_frames(flash_and_pan.path, strategy, fps=1.0)
    list(sampler)

    assert [c.t_s for c in sampler.cuts] == flash_and_pan.hard_cuts_s == [3.0]


def test_given_a_3_frame_shot_and_a_short_last_shot_when_sampled_by_scene_then_each_is_a_shot_from_its_first_frame(
    short_shots,
):
    sampler = sample_frames(short_shots.path, "scene", fps=1.0)
    frames = list(sampler)

    assert [(c.t_s, c.kind) for c in sampler.cuts] == [(2.0, "hard"), (2.12, "hard"), (4.12, "hard")]
    starts = [(f.t_s, f.shot_index) for f in frames if f.reason == "shot_start"]
    assert starts == [(0.0, 0), (2.0, 1), (2.12, 2), (4.12, 3)]
    # Skippable frames were skipped (but none around the cuts, which land on their exact frames).
    assert sampler.decoded_frames < short_shots.frame_count


def test_given_shots_shorter_than_the_sampling_period_when_sampled_uniformly_then_each_still_gets_its_first_frame(
    short_shots,
):
    frames = list(sample_frames(short_shots.path, "uniform", fps=1.0))

    assert [(f.t_s, f.shot_index, f.reason) for f in frames] == [
        (0.0, 0, "uniform"), (1.0, 0, "uniform"), (2.0, 1, "uniform"),  # the 3-frame shot holds the 2 s tick
        (3.0, 2, "uniform"), (4.0, 2, "uniform"), (4.12, 3, "shot_start"),  # the last shot holds none
    ]
