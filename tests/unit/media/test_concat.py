"""Joining clips into one episode (vidpipe.media.concat): real clips made with PyAV, the episode
read back with OpenCV (an independent decoder path: frame count, size, fps, pictures in order)."""

from __future__ import annotations

import av
import pytest
from assembly_clips import BLUE, GREEN, RED, YELLOW, centre_colour, nearest, read_frames, write_clip

from vidpipe.errors import InputRejected
from vidpipe.media.concat import PARAMETER_SETS_DIFFER, Target, concat_clips, encoder_options, inspect_clip

TARGET = Target(320, 180, 24)
EPISODE_SETTINGS = encoder_options(TARGET)  # what the episode's own encoder uses


def shots_in_order(frames, segments, palette) -> list[list[int]]:
    """For each segment, the palette index of every frame OpenCV decoded in its range."""
    return [[nearest(centre_colour(f), palette) for f in frames[s.start_frame:s.start_frame + s.frames]]
            for s in segments]


def packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def test_given_clips_of_different_sizes_and_rates_when_joined_then_one_size_one_rate_and_the_shots_in_order(tmp_path):
    palette = [RED, GREEN, BLUE]
    specs = [((64, 64), 12, RED), ((320, 180), 30, GREEN), ((160, 90), 25, BLUE)]  # repeats, drops, drops
    counts = [write_clip(tmp_path / f"{i}.mp4", size, fps, 1.0, colour) for i, (size, fps, colour) in enumerate(specs)]
    clips = [inspect_clip(tmp_path / f"{i}.mp4", TARGET.fps) for i in range(3)]

    plan, segments = concat_clips(clips, TARGET, tmp_path / "episode.mp4")

    frames, fps, size = read_frames(tmp_path / "episode.mp4")
    expected = [round(n * TARGET.fps / fps_) for n, (_, fps_, _) in zip(counts, specs, strict=True)]  # 1 s → 24 each
    assert abs(len(frames) - sum(expected)) <= len(expected)
    assert [s.frames for s in segments] == expected
    assert size == (320, 180) and fps == pytest.approx(24.0)
    assert {f.shape for f in frames} == {(180, 320, 3)}
    assert shots_in_order(frames, segments, palette) == [[i] * n for i, n in enumerate(expected)]
    assert [s.method for s in segments] == ["reencode"] * 3  # none is H.264 320x180 at 24 fps from our encoder
    assert "size 64x64" in segments[0].reason and "30 fps" in segments[1].reason and plan.track == "encoder"
    assert counts == [12, 30, 25] and expected == [24, 24, 24]


def test_given_clips_from_one_encoder_at_the_episode_format_when_joined_then_every_packet_is_copied(tmp_path):
    # veryfast has B-frames: decode order differs from display order, the first DTS is negative
    options = {"preset": "veryfast", "crf": "26"}
    counts = [write_clip(tmp_path / f"{i}.mp4", (320, 180), 24, 1.0, c, options) for i, c in enumerate([RED, GREEN])]
    clips = [inspect_clip(tmp_path / f"{i}.mp4", TARGET.fps) for i in range(2)]

    plan, segments = concat_clips(clips, TARGET, tmp_path / "episode.mp4")

    assert plan.track == "copied" and [s.method for s in segments] == ["remux", "remux"]
    assert packets(tmp_path / "episode.mp4") == packets(tmp_path / "0.mp4") + packets(tmp_path / "1.mp4")
    frames, fps, _ = read_frames(tmp_path / "episode.mp4")
    sources = read_frames(tmp_path / "0.mp4")[0] + read_frames(tmp_path / "1.mp4")[0]
    assert len(frames) == sum(counts) and fps == pytest.approx(24.0)
    assert all((a == b).all() for a, b in zip(frames, sources, strict=True))  # the very pictures, in order


def test_given_clips_made_with_the_episodes_settings_among_others_then_those_are_copied_and_the_rest_re_encoded(
        tmp_path):
    write_clip(tmp_path / "0.mp4", (320, 180), 24, 1.0, RED, EPISODE_SETTINGS)
    write_clip(tmp_path / "1.mp4", (64, 64), 24, 1.0, GREEN)
    write_clip(tmp_path / "2.mp4", (320, 180), 24, 1.0, BLUE, EPISODE_SETTINGS)
    clips = [inspect_clip(tmp_path / f"{i}.mp4", TARGET.fps) for i in range(3)]

    plan, segments = concat_clips(clips, TARGET, tmp_path / "episode.mp4")

    assert plan.track == "encoder" and [s.method for s in segments] == ["remux", "reencode", "remux"]
    frames, _, _ = read_frames(tmp_path / "episode.mp4")
    assert len(frames) == 72
    assert shots_in_order(frames, segments, [RED, GREEN, BLUE]) == [[0] * 24, [1] * 24, [2] * 24]


def test_given_clips_at_the_format_but_from_other_encoder_settings_then_they_are_re_encoded_not_copied(tmp_path):
    # Copied next to each other these decode in OpenCV without an error but show the wrong pictures
    # (one avcC for packets encoded under different SPS/PPS): measured, hence the byte-equality rule.
    write_clip(tmp_path / "0.mp4", (320, 180), 24, 1.0, RED, {"preset": "veryfast", "crf": "23"})
    write_clip(tmp_path / "1.mp4", (320, 180), 24, 1.0, YELLOW, {"preset": "veryfast", "crf": "30"})
    clips = [inspect_clip(tmp_path / f"{i}.mp4", TARGET.fps) for i in range(2)]

    _, segments = concat_clips(clips, TARGET, tmp_path / "episode.mp4")

    assert [s.reason for s in segments] == [PARAMETER_SETS_DIFFER] * 2
    frames, _, _ = read_frames(tmp_path / "episode.mp4")
    assert shots_in_order(frames, segments, [RED, YELLOW]) == [[0] * 24, [1] * 24]


def test_given_a_clip_turned_by_its_display_matrix_when_joined_then_it_is_re_encoded_upright(tmp_path):
    import numpy as np
    from fractions import Fraction

    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w", format="mp4") as container:  # stored 96x64: left half red, right half blue
        stream = container.add_stream("libx264", rate=Fraction(24), options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.set_display_rotation(90)  # shown turned 90° counter-clockwise: red at the bottom
        image = np.empty((64, 96, 3), np.uint8)
        image[:, :48], image[:, 48:] = RED, BLUE
        for _ in range(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    clip = inspect_clip(path, TARGET.fps)

    _, (segment,) = concat_clips([clip], TARGET, tmp_path / "episode.mp4")

    frames, _, _ = read_frames(tmp_path / "episode.mp4")
    middle = frames[6]
    top, bottom = middle[50, 160], middle[130, 160]
    assert clip.rotation == 90 and segment.method == "reencode"
    assert nearest(top, [RED, BLUE]) == 1 and nearest(bottom, [RED, BLUE]) == 0


def test_given_a_file_that_is_not_a_video_when_inspected_then_it_is_rejected_with_a_reason(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 100)

    with pytest.raises(InputRejected, match="not a readable video"):
        inspect_clip(path)
