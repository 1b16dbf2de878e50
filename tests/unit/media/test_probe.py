import pytest

from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe.media.probe import VideoInfo, check_caps, probe_video
from vidpipe_local import samples


def test_given_a_generated_clip_when_probed_then_the_facts_match_what_was_encoded(cuts_and_fade):
    info = probe_video(cuts_and_fade.path)

    assert info.duration_s == pytest.approx(12.0, abs=0.07)
    assert info.fps == pytest.approx(15.0)
    assert info.frame_count == cuts_and_fade.frame_count == 180
    assert (info.width, info.height, info.codec, info.rotation) == (320, 180, "h264", 0)


def test_given_a_clip_with_a_keyframe_every_second_when_probed_then_the_keyframe_hints_say_so(cuts_and_fade):
    info = probe_video(cuts_and_fade.path)

    assert info.keyframe_count == len(cuts_and_fade.keyframe_times_s) == 12
    assert info.keyframe_interval_s == pytest.approx(1.0)


def test_given_a_phone_clip_with_a_display_matrix_when_probed_then_rotation_and_display_size_follow_it(
    portrait_phone_clip,
):
    info = probe_video(portrait_phone_clip.path)

    assert info.rotation == 90
    assert (info.width, info.height) == (320, 180)
    assert info.display_size == (180, 320)


@pytest.mark.parametrize(
    ("make", "reason_words"),
    [
        (samples.zero_byte_file, ["empty", "0 bytes"]),
        (samples.random_bytes_file, ["not a readable video"]),
        (samples.truncated_mp4, ["truncated", "moov"]),
        (samples.audio_only_mp4, ["no video stream", "audio"]),
        (samples.still_image_as_mp4, ["still image", "png"]),
        (lambda path: samples.still_image_as_mp4(path, ".jpg"), ["still image", "mjpeg"]),
        (samples.single_frame_mp4, ["single frame"]),
    ],
    ids=["zero-byte", "random-bytes", "truncated", "audio-only", "png-renamed", "jpeg-renamed", "one-frame"],
)
def test_given_a_bad_upload_when_probed_then_it_is_rejected_with_a_reason_naming_the_problem(
    tmp_path, make, reason_words
):
    path = tmp_path / "upload.mp4"
    make(path)

    with pytest.raises(InputRejected) as rejected:
        probe_video(path)

    reason = rejected.value.reason
    assert all(word in reason for word in reason_words), reason
    assert "\n" not in reason


def test_given_an_mp4_cut_inside_its_first_frame_when_probed_then_the_undecodable_frame_is_the_reason(tmp_path):
    path = samples.truncated_mp4(tmp_path / "cut.mp4", keep_fraction=0.2, faststart=True)

    with pytest.raises(InputRejected) as rejected:
        probe_video(path)

    assert "first video frame cannot be decoded" in rejected.value.reason


def _info(**overrides) -> VideoInfo:
    facts = dict(duration_s=60.0, fps=30.0, frame_count=1800, width=1920, height=1080, codec="h264", size_bytes=10**7)
    return VideoInfo(**(facts | overrides))


@pytest.mark.parametrize(
    ("overrides", "expected_words"),
    [
        ({"size_bytes": 3 * 1024**3}, ["3.00 GiB", "2.00 GiB", "max_video_bytes"]),
        ({"duration_s": 4 * 3600.0}, ["14400.0 s", "10800 s", "max_duration_s"]),
        ({"width": 7680, "height": 4320}, ["7680x4320", "3840x2160", "resolution"]),
    ],
    ids=["size", "duration", "resolution"],
)
def test_given_a_video_over_a_cap_when_checked_then_the_reason_names_the_cap_and_both_numbers(
    overrides, expected_words
):
    with pytest.raises(InputRejected) as rejected:
        check_caps(_info(**overrides), Settings())

    assert all(word in rejected.value.reason for word in expected_words), rejected.value.reason


def test_given_a_portrait_4k_video_when_checked_then_it_passes_the_landscape_caps():
    check_caps(_info(width=2160, height=3840), Settings())


def test_given_a_video_within_every_cap_when_checked_then_nothing_is_raised():
    check_caps(_info(), Settings(max_video_bytes=10**7, max_duration_s=60.0, max_width=1920, max_height=1080))
