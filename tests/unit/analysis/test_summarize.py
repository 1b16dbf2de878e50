import httpx
from analysis_fakes import ScriptedGateway, analyzed, chat_with, summary_reply

from vidpipe.analysis.models import AnalyzeSpec, FrameRef, Manifest, Segment
from vidpipe.analysis.summarize import (
    REDUCE_BATCH,
    REDUCE_OUTPUT_TOKENS,
    Reducer,
    build_scenes,
    clock,
    scene_bounds,
    scene_line,
)
from vidpipe.providers.image_tokens import text_tokens

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
    assert [key for _, key in accounting.ledger] == gateway.client_request_ids
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
