"""Decode ahead: the same frames as decoding in step, a bounded lead, and no thread outliving its container."""

import threading
import time
from contextlib import closing, contextmanager
from contextvars import ContextVar

import av
import numpy as np
import pytest

from vidpipe.errors import InputRejected
from vidpipe.media import decoding, sampling, scenes
from vidpipe.media.readahead import ReadAhead
from vidpipe.media.sampling import sample_frames


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidpipe-read-ahead"]


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    """Until the producer thread has got somewhere (or, if it never does, ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


# --- ReadAhead on its own ----------------------------------------------------------------------------------


def test_given_a_generator_that_fails_when_read_ahead_then_its_items_come_in_order_and_then_its_error():
    def items():
        yield from range(50)
        raise ValueError("bad frame")

    seen = []
    with ReadAhead(items(), depth=3) as reader, pytest.raises(ValueError, match="bad frame"):
        for item in reader:
            seen.append(item)

    assert seen == list(range(50))
    assert next(reader, "ended") == "ended"  # after its error it ends, as a generator does


def test_given_a_slow_consumer_when_read_ahead_then_the_generator_runs_at_most_depth_items_ahead():
    produced = []

    def items():
        for i in range(40):
            produced.append(i)
            yield i

    leads = []
    with ReadAhead(items(), depth=3) as reader:
        for consumed, _ in enumerate(reader, start=1):
            _wait_until(lambda: len(produced) >= min(40, consumed + 3))  # the room there is, filled
            leads.append(len(produced) - consumed)

    assert max(leads) <= 3 + 1  # the buffer, plus the item it holds while waiting for room
    assert min(leads[:30]) >= 3  # it does read ahead, while there is more to read


def test_given_a_context_variable_set_by_the_caller_when_read_ahead_then_the_generator_sees_it():
    step = ContextVar("step", default="none")  # as the step's deadline and the local stack's invocation are
    step.set("extract segment 3")

    def items():
        yield step.get()

    with ReadAhead(items()) as reader:
        assert list(reader) == ["extract segment 3"]


def test_given_a_reader_stopped_mid_way_when_closed_then_the_generator_is_closed_in_its_thread_and_the_thread_ends():
    produced, finished_in = [], []

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            finished_in.append(threading.current_thread().name)

    reader = ReadAhead(items(), depth=2)
    assert next(reader) == 0
    _wait_until(lambda: len(produced) == 4)  # two ahead, and one held: the producer waits for room

    reader.close()

    assert finished_in == ["vidpipe-read-ahead"] and not _readers()
    assert next(reader, "ended") == "ended"


# --- the samplers ------------------------------------------------------------------------------------------


@pytest.fixture
def closing_spy(monkeypatch) -> list[list[threading.Thread]]:
    """For each container the samplers open: the read-ahead threads still alive when it closes."""
    alive_at_close: list[list[threading.Thread]] = []
    opened = decoding.open_video

    @contextmanager
    def spied(source):
        try:
            with opened(source) as video:
                yield video
        finally:
            alive_at_close.append(_readers())

    monkeypatch.setattr(sampling, "open_video", spied)
    return alive_at_close


def test_given_a_scene_sampler_abandoned_after_one_frame_when_closed_then_no_reader_is_left(cuts_and_fade, closing_spy):
    frames = iter(sample_frames(cuts_and_fade.path, "scene", fps=1.0))
    next(frames)
    assert len(_readers()) == 1  # decoding ahead

    frames.close()  # what dropping it does

    assert closing_spy == [[]] and not _readers()


def test_given_max_frames_when_the_sampler_stops_early_then_the_reader_ended_before_the_container_closed(
    cuts_and_fade, closing_spy
):
    sampler = sample_frames(cuts_and_fade.path, "scene", fps=1.0, max_frames=2)

    assert len(list(sampler)) == 2 and sampler.truncated
    assert closing_spy == [[]] and not _readers()


def test_given_a_failure_in_the_detector_when_sampling_then_it_propagates_and_no_reader_is_left(
    cuts_and_fade, closing_spy, monkeypatch
):
    made, thumb = [], scenes.Thumb.__init__

    def failing(self, frame, params):
        made.append(1)
        if len(made) == 20:
            raise MemoryError("out of memory")
        thumb(self, frame, params)

    monkeypatch.setattr(scenes.Thumb, "__init__", failing)

    with pytest.raises(MemoryError):
        list(sample_frames(cuts_and_fade.path, "scene", fps=1.0))
    assert closing_spy == [[]] and not _readers()


def test_given_a_decoding_error_mid_stream_when_sampling_then_input_rejected_is_raised_in_the_caller(
    cuts_and_fade, closing_spy, monkeypatch
):
    frames, clock = [], decoding.FrameClock.__call__

    def failing(self, frame):  # FrameClock runs where the decoding runs: in the reader's thread
        frames.append(threading.current_thread().name)
        if len(frames) == 30:
            raise av.InvalidDataError(1094995529, "Invalid data found when processing input")
        return clock(self, frame)

    monkeypatch.setattr(decoding.FrameClock, "__call__", failing)
    sampler = sample_frames(cuts_and_fade.path, "scene", fps=1.0)

    with pytest.raises(InputRejected, match="cannot be decoded"):
        list(sampler)
    assert set(frames) == {"vidpipe-read-ahead"}
    assert closing_spy == [[]] and not _readers()


@pytest.mark.parametrize(("start", "end", "fps", "max_frames"), [(0, 12, 1.0, None), (0, 12, 3.0, 4), (2.5, 7.5, 1.0, None)])
def test_given_decoding_ahead_on_one_thread_when_scene_sampled_then_frames_cuts_and_counts_are_those_of_before(
    cuts_off_the_detector_grid, monkeypatch, start, end, fps, max_frames
):
    path = cuts_off_the_detector_grid.path  # 30 fps with B-frames: frames skipped, cuts off the detector's grid
    ahead = sample_frames(path, "scene", start, end, fps=fps, max_frames=max_frames)
    frames_ahead = list(ahead)
    # As before decoding ahead: in step, in this thread, with frame threads.
    monkeypatch.setattr(sampling, "ReadAhead", lambda items, depth: closing(items))
    monkeypatch.setattr(sampling, "decoding_threads", lambda width, height: 0)  # FFmpeg's own count
    in_step = sample_frames(path, "scene", start, end, fps=fps, max_frames=max_frames)
    frames_in_step = list(in_step)

    assert [(f.t_s, f.shot_index, f.reason) for f in frames_ahead] == [
        (f.t_s, f.shot_index, f.reason) for f in frames_in_step
    ]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(frames_ahead, frames_in_step, strict=True))
    assert [c.model_dump() for c in ahead.cuts] == [c.model_dump() for c in in_step.cuts]
    # Frames decoded ahead but never handed out are not counted (with max_frames, a few were).
    assert (ahead.decoded_frames, ahead.detected_frames) == (in_step.decoded_frames, in_step.detected_frames)
