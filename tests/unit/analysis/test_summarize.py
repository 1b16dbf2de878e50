import json
import re
import threading
from types import SimpleNamespace

import httpx
import pytest
from analysis_fakes import FakeAccounting, ScriptedGateway, analyzed, chat_with, completion, summary_reply

from vidpipe import deadline
from vidpipe.analysis import summarize
from vidpipe.analysis.models import AnalyzeSpec, FrameRef, Manifest, Segment
from vidpipe.analysis.summarize import (
    REDUCE_BATCH,
    REDUCE_OUTPUT_TOKENS,
    REDUCE_WORKERS,
    Reducer,
    build_scenes,
    clock,
    scene_bounds,
    scene_line,
)
from vidpipe.errors import ProviderError, ProviderRetryable, RateLimited
from vidpipe.providers.image_tokens import text_tokens

WAIT_S = 5.0  # how long a fake gateway waits for the other calls before it gives up (a sequential reduce)
SPEC = AnalyzeSpec(model="gemini-2.5-flash", provider="gemini", detail="high")


def segment_frames(index: int, start: float, end: float, timestamps: list[float], describe=None):
    frames = [FrameRef(n=n, timestamp_s=t, shot=0, key=f"work/j/frames/{index}/{n}.jpg", width=64, height=36)
              for n, t in enumerate(timestamps)]
    manifest = Manifest(job_id="j", segment=Segment(index=index, start_s=start, end_s=end, max_frames=60),
                        strategy="scene", frames_sampled=len(frames), frames=frames, cuts=[], frames_per_chunk=8)
    return analyzed(manifest, describe) if describe else analyzed(manifest)


def test_given_cuts_when_bounding_scenes_then_intervals_cover_the_video_and_near_duplicates_merge():
    bounds = scene_bounds([30.0, 10.0, 10.03, 0.05, 59.95], duration_s=60.0)

    assert bounds == [(0.0, 10.0), (10.0, 30.0), (30.0, 60.0)]


def test_given_a_3_frame_shot_and_a_short_last_shot_when_bounding_scenes_then_each_is_a_scene():
    # The cuts the detector reports on tests/unit/media's short_shots clip (25 fps).
    bounds = scene_bounds([2.0, 2.12, 4.12], duration_s=4.44)

    assert bounds == [(0.0, 2.0), (2.0, 2.12), (2.12, 4.12), (4.12, 4.44)]


def test_given_segments_and_cuts_when_building_scenes_then_a_segment_boundary_is_not_a_scene_boundary():
    frames = segment_frames(0, 0, 60, [5.0, 30.0, 55.0]) + segment_frames(1, 60, 120, [65.0, 90.0, 110.0])

    scenes = build_scenes(frames, cuts=[20.0, 100.0], duration_s=120.0)

    assert [(s.start_s, s.end_s) for s in scenes] == [(0.0, 20.0), (20.0, 100.0), (100.0, 120.0)]
    assert [s.frames for s in scenes] == [1, 4, 1]  # the middle scene spans both segments
    assert [s.index for s in scenes] == [0, 1, 2]


def test_given_frames_out_of_order_when_building_scenes_then_scenes_and_descriptions_follow_time():
    late = segment_frames(1, 60, 120, [70.0, 80.0], describe=lambda f: f"late {f.timestamp_s}")
    early = segment_frames(0, 0, 60, [10.0, 50.0], describe=lambda f: f"early {f.timestamp_s}")

    (scene,) = build_scenes(late + early, cuts=[], duration_s=120.0)

    assert scene.description == "early 10.0. late 70.0. late 80.0."  # at most three: first, middle, last
    assert (scene.start_s, scene.end_s, scene.frames) == (0.0, 120.0, 4)


def test_given_a_scene_when_choosing_its_keyframe_then_the_frame_nearest_its_middle_is_chosen():
    frames = segment_frames(0, 0, 60, [5.0, 21.0, 24.0, 33.0, 39.0, 50.0])

    (_, scene, _) = build_scenes(frames, cuts=[20.0, 40.0], duration_s=60.0)

    assert scene.keyframe_s == 33.0
    assert scene.keyframe_key == "work/j/frames/0/3.jpg"


def test_given_a_shot_without_analyzed_frames_when_building_scenes_then_its_time_joins_the_scene_before():
    frames = segment_frames(0, 0, 60, [5.0, 45.0])

    scenes = build_scenes(frames, cuts=[20.0, 21.0, 40.0], duration_s=60.0)

    assert [(s.start_s, s.end_s) for s in scenes] == [(0.0, 40.0), (40.0, 60.0)]


def test_given_no_frame_before_the_first_cut_when_building_scenes_then_the_first_scene_starts_at_zero():
    frames = segment_frames(0, 0, 60, [25.0])

    (scene,) = build_scenes(frames, cuts=[10.0], duration_s=60.0)

    assert (scene.start_s, scene.end_s) == (0.0, 60.0)


def test_given_a_scene_when_writing_its_line_then_it_carries_times_and_description():
    (scene,) = build_scenes(segment_frames(0, 0, 200, [65.0]), cuts=[], duration_s=125.5)

    assert scene_line(scene) == "Scene 1 (0:00.0-2:05.5): view at 65.0s. [cat, indoor]"
    assert clock(3723.0) == "1:02:03.0"


def test_given_few_scenes_when_reducing_then_one_call_over_all_scene_lines(accounting):
    gateway = ScriptedGateway(summary_reply)

    answer = Reducer("j", SPEC, chat_with(gateway), accounting).reduce(["Scene 1: a", "Scene 2: b"])

    assert answer.summary == "A short video." and answer.tags == ["demo"]
    prompt = gateway.bodies[0]["messages"][0]["content"][0]["text"]
    assert prompt.endswith("Scene 1: a\nScene 2: b")
    assert [key for _, key in accounting.ledger] == gateway.client_request_ids
    [call] = accounting.ledger.values()
    assert call.step == "summarize" and call.confirmed and call.expected_prompt_tokens == text_tokens(prompt)


def test_given_many_scenes_when_reducing_then_groups_are_reduced_then_their_summaries(accounting):
    gateway = ScriptedGateway(summary_reply)
    lines = [f"Scene {i}: s{i}" for i in range(2 * REDUCE_BATCH + 1)]

    Reducer("j", SPEC, chat_with(gateway), accounting).reduce(lines)

    assert len(gateway.requests) == 4  # three groups, then their summaries
    # Each attempt recorded once (the groups finish in any order, so the ledger's order is theirs).
    assert sorted(key for _, key in accounting.ledger) == sorted(gateway.client_request_ids)
    assert len(set(gateway.client_request_ids)) == 4 and not accounting.intents
    assert len(accounting.acquired) == 4  # every attempt took a slot from the rate bucket
    final_prompt = gateway.bodies[-1]["messages"][0]["content"][0]["text"]
    assert final_prompt.count("Part ") == 3 and "Scene 1:" not in final_prompt
    assert all(call.step == "summarize" for call in accounting.ledger.values())


def test_given_a_reduce_run_again_when_recording_then_the_second_runs_calls_are_entries_of_their_own(accounting):
    gateway = ScriptedGateway(summary_reply)
    lines = [f"Scene {i}: s{i}" for i in range(REDUCE_BATCH + 5)]

    for _ in range(2):  # a retried Summarize step pays for its calls again
        Reducer("j", SPEC, chat_with(gateway), accounting).reduce(lines)

    assert len(gateway.requests) == 6 and len(accounting.ledger) == 6


def test_given_a_summary_answer_that_never_arrives_when_reducing_then_it_is_recorded_at_the_estimate(accounting):
    gateway = ScriptedGateway(httpx.ReadTimeout("slow"), summary_reply)

    Reducer("j", SPEC, chat_with(gateway), accounting).reduce(["Scene 1: a"])

    lost = accounting.ledger[("j", gateway.client_request_ids[0])]
    assert (lost.confirmed, lost.output_tokens) == (False, REDUCE_OUTPUT_TOKENS)
    assert lost.input_tokens == text_tokens(gateway.bodies[0]["messages"][0]["content"][0]["text"])


# --- the group reduces run side by side ------------------------------------------------------------


def first_scene(body: dict) -> int | None:
    """The group a reduce call is for (0, 1, 2, … by its first scene line); None for the final reduce."""
    prompt = body["messages"][0]["content"][0]["text"]
    found = re.search(r"^Scene (\d+):", prompt, re.MULTILINE)
    return int(found.group(1)) // REDUCE_BATCH if found else None


def group_summary(group: int) -> httpx.Response:
    return completion(json.dumps({"summary": f"group {group}.", "tags": [f"g{group}"]}))


def three_groups() -> list[str]:
    return [f"Scene {i}: s{i}" for i in range(2 * REDUCE_BATCH + 1)]


def test_given_three_groups_when_reducing_then_their_calls_are_in_flight_at_the_same_time(accounting):
    assert REDUCE_WORKERS >= 3
    together = threading.Barrier(3, timeout=WAIT_S)  # a sequential reduce breaks it: BrokenBarrierError

    def reply(body: dict) -> httpx.Response:
        group = first_scene(body)
        if group is not None:
            together.wait()
        return summary_reply(body)

    gateway = ScriptedGateway(reply)

    Reducer("j", SPEC, chat_with(gateway), accounting).reduce(three_groups())

    assert len(gateway.requests) == 4 and first_scene(gateway.bodies[-1]) is None  # the final reduce last
    assert sorted(key for _, key in accounting.ledger) == sorted(gateway.client_request_ids)
    assert len(accounting.acquired) == 4 and not accounting.intents


def test_given_groups_that_finish_in_reverse_order_when_reducing_then_the_parts_keep_the_group_order(accounting):
    answered: list[int] = []
    finished = {group: threading.Event() for group in range(3)}

    def reply(body: dict) -> httpx.Response:
        group = first_scene(body)
        if group is None:
            return summary_reply(body)
        if group < 2:  # group 2 answers first, then 1, then 0
            assert finished[group + 1].wait(WAIT_S), "the later group was not called meanwhile"
        answered.append(group)
        finished[group].set()
        return group_summary(group)

    gateway = ScriptedGateway(reply)

    answer = Reducer("j", SPEC, chat_with(gateway), accounting).reduce(three_groups())

    assert answered == [2, 1, 0]
    final_prompt = gateway.bodies[-1]["messages"][0]["content"][0]["text"]
    assert final_prompt.endswith("Part 1: group 0. [g0]\nPart 2: group 1. [g1]\nPart 3: group 2. [g2]")
    assert answer.summary == "A short video."
    assert len(accounting.ledger) == 4


def test_given_a_group_call_that_fails_when_reducing_then_the_step_fails_and_no_final_reduce_is_made(accounting):
    def reply(body: dict) -> httpx.Response:
        if first_scene(body) == 1:
            return httpx.Response(400, json={"error": {"message": "bad request"}})
        return summary_reply(body)

    gateway = ScriptedGateway(reply)

    with pytest.raises(ProviderError) as failed:
        Reducer("j", SPEC, chat_with(gateway), accounting).reduce(three_groups())

    assert failed.value.details["status"] == 400
    assert len(gateway.requests) <= 3 and all(first_scene(b) is not None for b in gateway.bodies)
    # The 400 billed nothing and left no intent; the groups that answered are recorded once each.
    answered = [key for key, body in zip(gateway.client_request_ids, gateway.bodies) if first_scene(body) != 1]
    assert sorted(key for _, key in accounting.ledger) == sorted(answered)
    assert not accounting.intents


def test_given_several_failing_groups_when_reducing_then_the_first_groups_error_is_raised(accounting):
    group_0_sent, group_2_failed = threading.Event(), threading.Event()

    def reply(body: dict) -> httpx.Response:
        group = first_scene(body)
        if group == 2:  # fails first, while group 0's call is under way
            assert group_0_sent.wait(WAIT_S)
            group_2_failed.set()
            return httpx.Response(422, json={"error": {"message": "group 2"}})
        if group == 0:
            group_0_sent.set()
            assert group_2_failed.wait(WAIT_S)
            return httpx.Response(400, json={"error": {"message": "group 0"}})
        return summary_reply(body)

    gateway = ScriptedGateway(reply)

    with pytest.raises(ProviderError) as failed:
        Reducer("j", SPEC, chat_with(gateway), accounting).reduce(three_groups())

    assert failed.value.details["status"] == 400  # group 0's, as a sequential reduce would have raised


def test_given_a_group_call_that_fails_when_another_is_retrying_then_the_retry_is_not_sent(accounting, monkeypatch):
    stops: list[threading.Event] = []  # the reducer's "a group failed" flag, to wait on it here

    class SeenEvent(threading.Event):
        def __init__(self):
            super().__init__()
            stops.append(self)

    monkeypatch.setattr(summarize, "threading", SimpleNamespace(Event=SeenEvent))  # summarize's alone
    group_1_failed = threading.Event()

    def reply(body: dict) -> httpx.Response:
        group = first_scene(body)
        if group == 0:  # a retryable answer, once group 1 has failed
            assert group_1_failed.wait(WAIT_S)
            return httpx.Response(503, json={"error": {"message": "busy"}})
        if group == 1:
            group_1_failed.set()
            return httpx.Response(400, json={"error": {"message": "bad"}})
        return summary_reply(body)

    def backoff(_seconds: float) -> None:  # group 0's wait before its retry ends once the step has failed
        assert len(stops) == 1 and stops[0].wait(WAIT_S)

    gateway = ScriptedGateway(reply)

    with pytest.raises(ProviderError) as failed:
        Reducer("j", SPEC, chat_with(gateway, sleep=backoff), accounting).reduce(three_groups())

    assert failed.value.details["status"] == 400
    assert sum(first_scene(b) == 0 for b in gateway.bodies) == 1  # group 0 was not asked again
    assert len(accounting.acquired) == len(gateway.requests)  # nor did it take another rate slot
    assert not accounting.intents


class RateLimitedGroups(FakeAccounting):
    """The shared bucket has no slot for the second group's call within the wait allowed."""

    def acquire(self, provider, tokens=0):
        super().acquire(provider, tokens)
        if len(self.acquired) == 2:
            raise RateLimited("rate limit gemini: next slot in 40s", retry_after_s=40.0, provider=provider)


def test_given_no_rate_slot_for_a_group_when_reducing_then_it_hands_back_rate_limited_as_before():
    accounting = RateLimitedGroups()
    gateway = ScriptedGateway(summary_reply)

    with pytest.raises(RateLimited) as limited:
        Reducer("j", SPEC, chat_with(gateway), accounting).reduce(three_groups())

    assert limited.value.retry_after_s == 40.0
    assert len(gateway.requests) <= 2  # the call without a slot was never sent
    assert len(accounting.ledger) == len(gateway.requests) and not accounting.intents


class LambdaContext:
    def __init__(self, remaining_ms: float):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> float:
        return self.remaining_ms


def test_given_too_little_time_left_when_reducing_groups_then_each_hands_back_before_sending(accounting):
    gateway = ScriptedGateway(summary_reply)

    # 12 s left: 7 s after the margin, less than an attempt's minimum. The pool's threads must see it.
    with deadline.within(LambdaContext(12_000)), pytest.raises(ProviderRetryable) as handed_back:
        Reducer("j", SPEC, chat_with(gateway), accounting).reduce(three_groups())

    assert handed_back.value.details.get("out_of_time")
    assert gateway.requests == [] and not accounting.ledger and not accounting.intents


def test_given_one_worker_when_reducing_then_the_groups_run_one_after_the_other_in_order(accounting):
    order: list[int | None] = []

    def reply(body: dict) -> httpx.Response:
        order.append(first_scene(body))
        return summary_reply(body)

    Reducer("j", SPEC, chat_with(ScriptedGateway(reply)), accounting, workers=1).reduce(three_groups())

    assert order == [0, 1, 2, None]
