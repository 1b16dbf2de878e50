"""Uniform and keyframe sampling, segments and streaming."""

import itertools
import math

import av
import cv2
import numpy as np
import pytest

from vidpipe.errors import InputRejected
from vidpipe.media import decoding, sampling
from vidpipe.media.sampling import FrameBudget, RefinedSkipping, SegmentSampler, TickGrids, sample_frames
from vidpipe_local import samples


def _times(sampler) -> list[float]:
    return [frame.t_s for frame in sampler]


def test_given_a_12_s_clip_when_sampled_uniformly_at_1_fps_then_one_full_size_frame_per_second(cuts_and_fade):
    frames = list(sample_frames(cuts_and_fade.path, "uniform", fps=1.0))

    assert [f.t_s for f in frames] == [float(s) for s in range(12)]
    assert [f.frame_index for f in frames] == [15 * s for s in range(12)]
    assert all(f.image.shape == (180, 320, 3) and f.reason == "uniform" for f in frames)


def test_given_a_rate_off_the_frame_grid_when_sampled_uniformly_then_each_tick_takes_the_first_frame_at_or_after_it(
    cuts_and_fade,
):
    times = _times(sample_frames(cuts_and_fade.path, "uniform", fps=2.5))

    expected = [math.ceil(k / 2.5 * 15 - 1e-9) / 15 for k in range(30)]
    assert times == pytest.approx(expected)


def test_given_a_rate_above_the_video_rate_when_sampled_uniformly_then_every_frame_is_taken_once(cuts_and_fade):
    frames = list(sample_frames(cuts_and_fade.path, "uniform", fps=40.0))

    assert [f.frame_index for f in frames] == list(range(cuts_and_fade.frame_count))


@pytest.mark.parametrize("fps", [1.0, 3.0, 7.0])
@pytest.mark.parametrize("boundaries", [(0, 5, 10), (0, 5.5, 10), (0, 2.9, 6.1, 10)])
def test_given_adjacent_segments_when_sampled_uniformly_then_together_they_equal_one_pass(
    cuts_and_fade, fps, boundaries
):
    whole = _times(sample_frames(cuts_and_fade.path, "uniform", 0, 10, fps=fps))

    segments = [sample_frames(cuts_and_fade.path, "uniform", a, b, fps=fps) for a, b in itertools.pairwise(boundaries)]
    pieces = [t for segment in segments for t in _times(segment)]

    assert pieces == whole  # nothing lost, nothing twice at a boundary


def test_given_a_segment_when_sampled_then_every_frame_lies_inside_it(cuts_and_fade):
    times = _times(sample_frames(cuts_and_fade.path, "uniform", 4.2, 7.7, fps=2.0))

    ticks = [k / 2.0 for k in range(9, 16)]  # 4.5 ... 7.5
    assert times == pytest.approx([math.ceil(tick * 15 - 1e-9) / 15 for tick in ticks])  # 15 fps frame grid


def test_given_max_frames_when_sampling_then_it_stops_there_and_says_it_was_truncated(cuts_and_fade):
    sampler = sample_frames(cuts_and_fade.path, "uniform", fps=1.0, max_frames=4)

    assert len(list(sampler)) == 4 and sampler.truncated


def test_given_a_sampler_when_the_first_frame_is_taken_then_only_the_frames_up_to_it_were_decoded(cuts_and_fade):
    sampler = sample_frames(cuts_and_fade.path, "uniform", fps=1.0)

    next(iter(sampler))

    assert sampler.decoded_frames <= 8  # a generator: decoding follows consumption (frame threads read ahead a bit)


def test_given_a_gop_of_10_frames_when_sampling_keyframes_then_exactly_the_encoded_keyframes_come_out(short_gop):
    frames = list(sample_frames(short_gop.path, "keyframes"))

    assert [f.frame_index for f in frames] == list(range(0, short_gop.frame_count, 10))
    assert [f.t_s for f in frames] == pytest.approx(short_gop.keyframe_times_s)
    assert all(f.reason == "keyframe" and f.image.shape == (180, 320, 3) for f in frames)


def test_given_keyframe_sampling_when_counting_decoded_frames_then_the_decoder_skipped_all_the_others(short_gop):
    keyframes = sample_frames(short_gop.path, "keyframes")
    uniform = sample_frames(short_gop.path, "uniform", fps=1.0)
    list(keyframes), list(uniform)

    assert keyframes.decoded_frames == len(short_gop.keyframe_times_s) == 6
    # Uniform decodes more, but not every frame: the non-reference B-frames no grid picks are skipped (see below).
    assert keyframes.decoded_frames < uniform.decoded_frames < short_gop.frame_count == 60


def test_given_a_segment_when_sampling_keyframes_then_only_its_keyframes_come_out(short_gop):
    times = _times(sample_frames(short_gop.path, "keyframes", 1.0, 3.0))

    assert times == pytest.approx([t for t in short_gop.keyframe_times_s if 1.0 <= t < 3.0])


def test_given_keyframes_on_both_sides_of_a_cut_when_sampling_keyframes_then_the_cut_is_placed_between_them(
    short_gop,
):
    sampler = sample_frames(short_gop.path, "keyframes")
    shots = [f.shot_index for f in sampler]

    assert [(c.kind, c.start_s, c.end_s) for c in sampler.cuts] == [("keyframe", pytest.approx(4 / 3), 2.0)]
    assert shots == [0, 0, 0, 1, 1, 1]


def test_given_a_portrait_phone_clip_when_sampled_then_frames_come_out_upright(portrait_phone_clip):
    frame = next(iter(sample_frames(portrait_phone_clip.path, "uniform")))

    assert frame.image.shape == (320, 180, 3)


@pytest.mark.parametrize(
    ("rotation", "opencv_turn"),
    [(90, cv2.ROTATE_90_COUNTERCLOCKWISE), (180, cv2.ROTATE_180), (270, cv2.ROTATE_90_CLOCKWISE)],
)
def test_given_a_display_rotation_when_sampled_then_the_frame_is_turned_the_way_opencv_turns_it(
    tmp_path, rotation, opencv_turn
):
    clip = samples.make_video(tmp_path / "turned.mp4", [samples.ShotSpec(duration_s=0.4, seed=8)], rotation=rotation)
    with av.open(str(clip.path)) as container:
        stored = next(container.decode(video=0)).to_ndarray(format="bgr24")

    frame = next(iter(sample_frames(clip.path, "uniform")))

    assert frame.image.flags.c_contiguous and np.array_equal(frame.image, cv2.rotate(stored, opencv_turn))


# --- uniform sampling decodes less than every frame, and keeps the same frames --------------------------


def _non_reference_frames(path, fps: int) -> set[int]:
    """Numbers of the H.264 pictures no other picture refers to (nal_ref_idc 0 in every slice), read from the
    MP4 packets (NAL units behind 4-byte lengths)."""
    found = set()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            data, i, refs = bytes(packet), 0, []
            while i + 4 < len(data):
                length, header = int.from_bytes(data[i : i + 4], "big"), data[i + 4]
                if header & 0x1F in (1, 5):  # a slice
                    refs.append(header >> 5 & 3)
                i += 4 + length
            if refs and not any(refs):
                found.add(round(float(packet.pts * stream.time_base) * fps))
    return found


def _spy_on_decoded_frames(monkeypatch) -> list[float]:
    """t of every frame the decoder hands the samplers (each goes through FrameClock once)."""
    times, clock = [], decoding.FrameClock.__call__

    def spying(self, frame):
        times.append(clock(self, frame))
        return times[-1]

    monkeypatch.setattr(decoding.FrameClock, "__call__", spying)
    return times


@pytest.mark.parametrize("fps", [1.0, 2.5])
def test_given_b_frames_when_sampled_uniformly_then_only_non_reference_frames_no_grid_picks_are_left_undecoded(
    cuts_off_the_detector_grid, monkeypatch, fps
):
    truth = cuts_off_the_detector_grid  # 30 fps, x264 B-frames; hard cuts on frames 91 and 272
    with av.open(str(truth.path)) as container:
        full_decode = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    every_frame = sample_frames(truth.path, "uniform", fps=30.0)  # every frame is on a tick: nothing skipped
    list(every_frame)
    non_reference = _non_reference_frames(truth.path, 30)
    assert every_frame.decoded_frames == 360 and len(non_reference) > 60
    decoded = _spy_on_decoded_frames(monkeypatch)

    sampler = sample_frames(truth.path, "uniform", fps=fps)
    frames = list(sampler)

    skipped = set(range(360)) - {round(t * 30) for t in decoded}
    assert sampler.decoded_frames == len(decoded) == 360 - len(skipped)
    ticks = {math.ceil(k / fps * 30 - 1e-9) for k in range(math.ceil(12 * fps))}  # the first frame at or after k / fps
    looks = set(range(0, 360, 3))  # the detector's grid: one frame in 3
    assert skipped <= non_reference - ticks - looks  # nothing else is ever skipped...
    assert len(skipped) >= 0.75 * len(non_reference - ticks - looks)  # ...and most of those are (not around cuts)
    # The same frames come out, pixel for pixel a full decode's, with the same cuts as when every frame is decoded;
    # the hard cuts, on non-reference frames off both grids (91, 272), still land exactly there.
    assert [f.frame_index for f in frames] == sorted(ticks)
    assert all(np.array_equal(f.image, full_decode[f.frame_index]) for f in frames)
    assert [c.model_dump() for c in sampler.cuts] == [c.model_dump() for c in every_frame.cuts]
    assert [round(c.t_s * 30, 3) for c in sampler.cuts if c.kind == "hard"] == [91, 272]
    assert {91, 272} <= non_reference


@pytest.mark.parametrize("strategy", ["scene", "uniform"])
def test_given_h264_in_mp4_when_frames_are_skipped_then_their_packets_never_reach_the_decoder_and_nothing_else_changes(
    cuts_off_the_detector_grid, monkeypatch, strategy
):
    path = cuts_off_the_detector_grid.path  # x264 with B-frames, in MP4
    handed, packets = [], sampling.RefinedSkipping.packets

    def counted(self, stream_packets):
        for packet in packets(self, stream_packets):
            handed.append(round(float(packet.pts * packet.time_base) * 30) if packet.size else None)
            yield packet

    monkeypatch.setattr(sampling.RefinedSkipping, "packets", counted)
    sampler = sample_frames(path, strategy, fps=1.0)
    frames = list(sampler)
    not_handed = set(range(360)) - set(handed)
    handed.clear()
    # Every packet handed to the decoder, which skips those pictures itself (skip_frame), as for other codecs.
    monkeypatch.setattr(sampling.h264, "nal_length_size", lambda name, extradata: None)
    every_packet = sample_frames(path, strategy, fps=1.0)
    frames_every_packet = list(every_packet)

    assert set(handed) == set(range(360)) | {None}
    assert not_handed and not_handed <= _non_reference_frames(path, 30)  # only pictures nothing refers to
    assert [(f.t_s, f.shot_index, f.reason) for f in frames] == [
        (f.t_s, f.shot_index, f.reason) for f in frames_every_packet
    ]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(frames, frames_every_packet, strict=True))
    assert [c.model_dump() for c in sampler.cuts] == [c.model_dump() for c in every_packet.cuts]
    assert (sampler.decoded_frames, sampler.detected_frames) == (every_packet.decoded_frames,
                                                                  every_packet.detected_frames)


def test_given_packets_in_decoding_order_when_checked_against_the_grids_then_each_tick_s_first_frame_is_needed():
    clock = type("Clock", (), {"seconds": staticmethod(lambda pts: pts / 30)})()  # pts in frames, 30 fps
    grids = TickGrids(clock, (1.0, 10.0))  # 1 a second, and 10 a second (one frame in 3)
    # x264's B-pyramid: each P-frame, then the referenced B in the middle, then the two non-reference b's.
    order = [0, 4, 2, 1, 3, 8, 6, 5, 7, 12, 10, 9, 11, 16, 14, 13, 15, 30, 29, None]

    needed = {pts for pts in order if grids.first_after_a_tick(pts)}

    non_reference = {1, 3, 5, 7, 9, 11, 13, 15, 29}
    assert needed & non_reference == {3, 9, 15, 29}  # b's on the 10 a second grid (29: 16 < 27 <= 29)
    assert 30 in needed and None in needed  # the 1 s tick's frame; a packet without pts is always decoded
    # 4, 8 and 10 come before the frame shown before them: the interval reaches back to one seen earlier, so
    # they count as needed (they would be decoded anyway, or are one b too many): never one too few.
    assert {0, 4, 8, 10, 6, 12} <= needed and not needed & {1, 2, 5, 7, 11, 13, 14}


def _whole_packets(sizes: list[int]) -> list[int]:
    """The packets RefinedSkipping has decoded whole, of a keyframe then inter packets of these sizes."""
    packet = type("Packet", (), {})
    packets = []
    for pts, size in enumerate([20_000, *sizes, 0]):  # the empty packet at the end flushes the decoder
        p = packet()
        p.size, p.is_keyframe, p.pts = size, pts == 0, pts if size else None
        packets.append(p)
    codec = type("Codec", (), {"skip_frame": None, "name": "mpeg4", "extradata": None})()
    skipping = RefinedSkipping(codec)
    return [p.pts for p in skipping.packets(packets) if codec.skip_frame == "DEFAULT" and p.size]


def test_given_the_first_packets_of_a_stream_when_skipping_then_they_are_judged_against_those_demuxed_ahead():
    steady = [7000, 3500] * 20  # P-frames and the non-reference frames between them, as carphone's
    assert _whole_packets(steady) == []  # none decoded whole while what is usual was still unknown

    cut = steady[:3] + [70_000] + steady[4:]  # a cut on the 4th packet, before 8 inter packets were seen
    assert _whole_packets(cut) == list(range(4, 13))  # it and the 8 after it: the frames shown before it

    assert _whole_packets([7000, 3500, 7000]) == [1, 2, 3]  # too few to know what is usual: all of them


@pytest.fixture(scope="module")
def dissolve_into_a_short_shot(tmp_path_factory):
    """30 fps: a 0.6 s dissolve at 4.1 s into a 1.8 s shot (no 2 s tick inside it), then a hard cut at 5.9 s."""
    shots = [samples.ShotSpec(duration_s=4.1, seed=501), samples.ShotSpec(duration_s=1.8, seed=602, motion=(4.0, 1.0)),
             samples.ShotSpec(duration_s=2.0, seed=703)]
    transitions = [samples.Transition(kind="dissolve", duration_s=0.6), samples.Transition()]
    path = tmp_path_factory.mktemp("gradual") / "dissolve_short_shot.mp4"
    return samples.make_video(path, shots, fps=30, transitions=transitions)


def test_given_a_gradual_cut_into_a_shot_without_a_tick_when_sampled_uniformly_then_its_frame_is_a_detector_look(
    dissolve_into_a_short_shot, monkeypatch
):
    path = dissolve_into_a_short_shot.path
    sampler = sample_frames(path, "uniform", fps=0.5)
    frames = [(f.frame_index, f.shot_index, f.reason) for f in sampler]
    monkeypatch.setattr(sampling.TickGrids, "first_after_a_tick", lambda self, pts: True)  # every frame decoded
    full = sample_frames(path, "uniform", fps=0.5)

    assert frames == [(f.frame_index, f.shot_index, f.reason) for f in full]  # skipping changes nothing
    assert sampler.decoded_frames < full.decoded_frames
    assert [c.kind for c in sampler.cuts] == ["gradual", "hard"]
    # The gradual cut is confirmed lag_s after the dissolve ends: its shot's frame is the oldest one still held then,
    # a frame the detector looked at (one in 3, which every decode has), past the blend and inside the shot.
    (start, shot, _), = [f for f in frames if f[2] == "shot_start"]
    gradual, hard = sampler.cuts
    assert shot == 1 and start % 3 == 0 and gradual.end_s < start / 30 < hard.t_s


@pytest.mark.parametrize(("start", "end", "fps"), [(5, 5, 1.0), (6, 2, 1.0), (0, 10, 0.0)])
def test_given_an_empty_segment_or_a_zero_rate_when_a_sampler_is_made_then_it_refuses(start, end, fps):
    with pytest.raises(ValueError):
        SegmentSampler("unused.mp4", "uniform", start, end, fps)


@pytest.mark.parametrize("strategy", ["scene", "uniform", "keyframes"])
def test_given_a_decoding_error_mid_stream_when_sampling_then_input_rejected_is_raised_after_the_frames_before_it(
    cuts_and_fade, monkeypatch, strategy
):
    frames, clock = [], decoding.FrameClock.__call__

    def failing(self, frame):
        frames.append(frame)
        if len(frames) == 10:  # (keyframe sampling decodes one frame a second)
            raise av.InvalidDataError(1094995529, "Invalid data found when processing input")
        return clock(self, frame)

    monkeypatch.setattr(decoding.FrameClock, "__call__", failing)
    sampled = []

    with pytest.raises(InputRejected, match="cannot be decoded"):
        sampled.extend(sample_frames(cuts_and_fade.path, strategy, fps=1.0))
    assert sampled and all(f.t_s < frames[-1].time for f in sampled)


@pytest.mark.parametrize(
    "make", [samples.random_bytes_file, samples.audio_only_mp4], ids=["random-bytes", "audio-only"]
)
def test_given_a_file_that_is_not_a_video_when_sampled_then_input_rejected_is_raised(tmp_path, make):
    path = make(tmp_path / "upload.mp4")

    with pytest.raises(InputRejected):
        list(sample_frames(path, "uniform"))


# --- the frame budget: thin frames inside shots, never a shot -------------------------------------------


@pytest.fixture(scope="module")
def montage(tmp_path_factory):
    """10 s at 25 fps like a real montage: cuts at 1.2, 3.04, 5.48, 7.48 s, then a last shot of 0.32 s
    (9.68 s); the shots pan fast (9 px a frame), so scene sampling wants more frames than 1 a second."""
    cuts = [0.0, 1.2, 3.04, 5.48, 7.48, 9.68, 10.0]
    shots = [samples.ShotSpec(duration_s=b - a, seed=400 + i, motion=(9.0, 2.0))
             for i, (a, b) in enumerate(itertools.pairwise(cuts))]
    return samples.make_video(tmp_path_factory.mktemp("budget") / "montage.mp4", shots, fps=25, size=(320, 180))


@pytest.mark.parametrize(
    ("strategy", "first_frames"),
    [
        ("scene", [0.0, 1.2, 3.04, 5.48, 7.48, 9.68]),  # each shot from its first frame
        ("uniform", [0.0, 2.0, 4.0, 6.0, 8.0, 9.68]),  # each shot from its first tick; the last has none
    ],
)
def test_given_a_budget_of_duration_times_fps_when_a_montage_is_extracted_then_every_shot_keeps_a_frame(
    montage, strategy, first_frames
):
    from vidpipe.analysis.extract import select_frames
    from vidpipe.analysis.models import ExtractSpec, Segment

    segment = Segment(index=0, start_s=0.0, end_s=montage.duration_s, max_frames=10)  # 10 s × 1 fps
    spec = ExtractSpec(strategy=strategy, fps=1.0, model_family="gemini", frame_width=384, frame_height=216,
                       frames_per_chunk=3)
    selection = select_frames(montage.path, segment, spec)
    kept = [frame.sampled for frame in selection.frames]

    assert len(kept) <= segment.max_frames
    assert selection.sampled > len(kept)  # the budget was short: frames were thinned
    assert sorted({f.shot_index for f in kept}) == [0, 1, 2, 3, 4, 5]  # the 0.32 s last shot included
    first_of_each_shot = {f.shot_index: f.t_s for f in reversed(kept)}
    assert [first_of_each_shot[shot] for shot in range(6)] == pytest.approx(first_frames, abs=1e-6)


def test_given_more_shots_than_frames_when_budgeted_then_shots_fill_it_and_frames_inside_shots_give_way():
    budget = FrameBudget(max_frames=4, start_s=0.0, end_s=10.0)

    # Two shots in the first 2 s: 1 shot a second is expected over the 8 s left, so inner frames get no room.
    assert budget.has_room(0.0, first_of_shot=True)
    budget.take()
    assert budget.has_room(1.0, first_of_shot=True)
    budget.take()
    assert not budget.has_room(2.0, first_of_shot=False)
    for t in (5.0, 9.0):
        assert budget.has_room(t, first_of_shot=True)
        budget.take()
    assert not budget.has_room(9.5, first_of_shot=True)  # full: a fifth shot cannot be paid for
    assert (budget.kept, budget.shots, budget.refused_shots) == (4, 5, 1)


def test_given_a_calm_segment_when_budgeted_then_frames_inside_shots_are_kept_until_one_is_left_for_a_last_shot():
    budget = FrameBudget(max_frames=10, start_s=0.0, end_s=10.0)
    kept = []
    for t in range(10):
        if budget.has_room(float(t), first_of_shot=t == 0):
            budget.take()
            kept.append(t)

    assert kept == list(range(9))  # the 10th frame stays free for a shot that may start in the last second
    assert budget.has_room(9.7, first_of_shot=True)
