import cv2
import numpy as np

from vidpipe.media.dedupe import Deduper, dhash, hamming
from vidpipe.media.sampling import sample_frames


def _frame_at(truth, t_s):
    return next(f.image for f in sample_frames(truth.path, "uniform", t_s, t_s + 1))


def _reencoded(image, quality=60):
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def test_given_a_left_to_right_darkening_gradient_when_hashed_then_every_bit_is_set():
    gradient = np.tile(np.linspace(255, 0, 90).astype(np.uint8), (80, 1))

    assert dhash(gradient) == 2**64 - 1


def test_given_the_same_frame_twice_when_deduped_then_the_second_is_dropped(cuts_and_fade):
    image = _frame_at(cuts_and_fade, 1.0)
    deduper = Deduper()

    assert [deduper.keep(image), deduper.keep(image.copy())] == [True, False]


def test_given_a_recompressed_and_brightened_copy_when_deduped_then_it_counts_as_a_near_duplicate(cuts_and_fade):
    image = _frame_at(cuts_and_fade, 1.0)
    copy = cv2.convertScaleAbs(_reencoded(image), alpha=1.0, beta=20)
    deduper = Deduper()

    assert deduper.keep(image) and not deduper.keep(copy)


def test_given_frames_of_four_different_shots_when_deduped_then_all_are_kept(cuts_and_fade):
    images = [_frame_at(cuts_and_fade, t) for t in (1.0, 4.0, 7.5, 10.0)]
    deduper = Deduper()

    assert [deduper.keep(image) for image in images] == [True] * 4
    assert min(hamming(dhash(a), dhash(b)) for i, a in enumerate(images) for b in images[i + 1 :]) > 12


def test_given_a_return_to_an_earlier_view_when_deduped_then_the_window_decides_whether_it_is_remembered(
    cuts_and_fade,
):
    a, b = _frame_at(cuts_and_fade, 1.0), _frame_at(cuts_and_fade, 4.0)
    short_memory, longer_memory = Deduper(window=1), Deduper(window=4)

    assert [short_memory.keep(x) for x in (a, b, a)] == [True, True, True]
    assert [longer_memory.keep(x) for x in (a, b, a)] == [True, True, False]


def test_given_one_frame_a_second_of_a_static_shot_when_deduped_then_only_the_first_stays(cuts_and_fade):
    frames = sample_frames(cuts_and_fade.path, "uniform", 7.0, 9.0, fps=2.0)

    deduper = Deduper()
    kept = [frame for frame in frames if deduper.keep(frame.image)]

    assert [f.t_s for f in kept] == [7.0]
