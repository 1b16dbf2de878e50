from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from vidpipe.errors import OutputInvalid
from vidpipe.media.sampling import sample_frames
from vidpipe.media.verify import poster_frame, verify_video
from vidpipe_local import samples


def test_given_a_video_as_requested_when_verified_then_it_is_ok_and_every_frame_decoded(cuts_and_fade):
    result = verify_video(cuts_and_fade.path, {"duration_s": 12.0, "fps": 15, "width": 320, "height": 180})

    assert result.ok and result.mismatches == []
    assert result.decoded_frames == cuts_and_fade.frame_count


@pytest.mark.parametrize(
    ("expected", "words"),
    [
        ({"fps": 24}, "frame rate 15.000 fps, expected 24.000"),
        ({"width": 1280, "height": 720}, "size 320x180, expected 1280x720"),
        ({"duration_s": 5.0}, "duration 12.00 s, expected 5.00 s"),
    ],
    ids=["fps", "size", "duration"],
)
def test_given_a_video_unlike_the_request_when_verified_then_the_mismatch_is_named(cuts_and_fade, expected, words):
    result = verify_video(cuts_and_fade.path, expected)

    assert not result.ok and len(result.mismatches) == 1 and words in result.mismatches[0]


def test_given_an_expectation_object_with_attributes_when_verified_then_it_is_used(cuts_and_fade):
    @dataclass
    class Requested:
        duration_s: float
        fps: float
        width: int
        height: int

    assert verify_video(cuts_and_fade.path, Requested(12.4, 15, 320, 180), tolerance=0.05).ok
    assert not verify_video(cuts_and_fade.path, Requested(13.0, 15, 320, 180), tolerance=0.05).ok


def test_given_a_portrait_phone_clip_when_verified_then_sizes_are_compared_as_displayed(portrait_phone_clip):
    assert verify_video(portrait_phone_clip.path, {"width": 180, "height": 320}).ok


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (samples.truncated_mp4, "truncated"),
        (lambda path: samples.truncated_mp4(path, keep_fraction=0.8, faststart=True), "cut short"),
        (samples.random_bytes_file, "not a readable video"),
    ],
    ids=["index-lost", "data-cut-short", "not-a-video"],
)
def test_given_a_broken_download_when_verified_then_output_invalid_is_raised(tmp_path, make, words):
    path = tmp_path / "video.mp4"
    make(path)

    with pytest.raises(OutputInvalid) as invalid:
        verify_video(path, {})

    assert words in invalid.value.reason


def test_given_a_video_when_a_poster_is_made_then_it_is_a_full_size_jpeg_of_the_frame_at_that_point(cuts_and_fade):
    jpeg = poster_frame(cuts_and_fade.path, at_fraction=0.125)  # 1.5 s, inside the first shot

    poster = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert jpeg[:3] == b"\xff\xd8\xff" and poster.shape == (180, 320, 3)
    same_time = next(iter(sample_frames(cuts_and_fade.path, "uniform", 1.5, 2.0, fps=15))).image
    other_shot = next(iter(sample_frames(cuts_and_fade.path, "uniform", 4.0, 5.0))).image
    assert _difference(poster, same_time) < 8 < _difference(poster, other_shot)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_given_a_portrait_phone_clip_when_a_poster_is_made_then_it_is_upright(portrait_phone_clip):
    poster = cv2.imdecode(np.frombuffer(poster_frame(portrait_phone_clip.path), np.uint8), cv2.IMREAD_COLOR)

    assert poster.shape == (320, 180, 3)


def test_given_bytes_that_are_no_video_when_a_poster_is_asked_for_then_output_invalid_is_raised(tmp_path):
    path = samples.random_bytes_file(tmp_path / "x.mp4")

    with pytest.raises(OutputInvalid):
        poster_frame(path)
