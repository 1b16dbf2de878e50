"""The storyboard: the produce message's bounds, the clamps (each reported),
an approver's edit validated again, and the shots' generation requests."""

from __future__ import annotations

import json
import math

import pytest

from vidpipe.config import Settings
from vidpipe.errors import InputRejected
from vidpipe.generation.messages import InvalidJobMessage, ProduceJob, execution_name, parse_job_message
from vidpipe.production.flow import shot_requests
from vidpipe.production.storyboard import StoryboardAnswer, clamp, markdown, shot_prompt, validate_edited

SETTINGS = Settings()


def job(**fields) -> ProduceJob:
    return ProduceJob.model_validate({"type": "produce", "script": "Ana runs. Ben waits.",
                                      "characters": [{"name": "Ana", "description": "a woman in a yellow coat"},
                                                     {"name": "Ben"}], **fields}, context={"settings": SETTINGS})


def shot(**fields) -> dict:
    return {"duration_s": 4, "camera_angle": "medium shot", "camera_movement": "static", "action": "Ana runs.",
            "emotional_tone": "tense", "mode": "normal", "physics": {}, "characters": ["Ana"],
            "on_screen_text": None, **fields}


def answer(*shots: dict) -> StoryboardAnswer:
    return StoryboardAnswer.model_validate({"episode_title": "Run", "scenes": [
        {"heading": "Scene 1", "location": "a park", "shots": list(shots)}]})


def test_given_a_produce_message_when_parsed_then_defaults_apply_and_the_id_is_a_production_one():
    parsed = parse_job_message(json.dumps({"type": "produce", "script": "A. B."}), SETTINGS)

    assert (parsed.min_shots, parsed.max_shots, parsed.on_shot_failure, parsed.approve_storyboard) == (
        8, 12, "skip", False)
    assert execution_name(parsed).startswith("pro-")


@pytest.mark.parametrize("fields, problem", [
    ({"script": "x" * 20_001}, "script: "),
    ({"min_shots": 9, "max_shots": 3}, "min_shots 9 is above max_shots 3"),
    ({"max_shots": 61}, "max_shots"),
    ({"on_shot_failure": "retry"}, "on_shot_failure"),
    ({"characters": [{"name": "Ana"}, {"name": "ana"}]}, "names must be unique"),
    ({"characters": [{"name": "Ana", "reference_image": "ftp://x/y.png"}]}, "must be s3://bucket/key or an https://"),
    ({"defaults": {"mode": "normal", "physics": {"time_scale": 0.2}}}, "applies to mode slow_motion"),
])
def test_given_an_invalid_produce_message_when_parsed_then_it_is_rejected_saying_why(fields, problem):
    with pytest.raises(InvalidJobMessage) as rejected:
        parse_job_message(json.dumps({"type": "produce", "script": "A. B.", **fields}), SETTINGS)

    assert problem in rejected.value.reason


def test_given_too_many_shots_when_clamped_then_the_last_ones_are_dropped_and_reported():
    board = clamp(answer(*[shot(action=f"take {i}") for i in range(5)]), job(min_shots=1, max_shots=3))

    assert [s.action for s in board.shots] == ["take 0", "take 1", "take 2"]
    assert board.clamps == ["5 shots cut to max_shots 3 (the last ones dropped)"]


def test_given_too_few_shots_when_clamped_then_the_longest_are_split_and_reported():
    board = clamp(answer(shot(duration_s=8, action="long"), shot(duration_s=2, action="short")),
                  job(min_shots=3, max_shots=5))

    assert [(s.action, s.duration_s) for s in board.shots] == [("long", 4), ("long (continued)", 4), ("short", 2)]
    assert "2 shots split to min_shots 3" in board.clamps[0]


def test_given_out_of_range_values_when_clamped_then_each_change_is_reported():
    board = clamp(answer(shot(duration_s=42, mode="slow_motion", physics={"time_scale": 0.01},
                              characters=["Ana", "Zed"]), shot(duration_s=math.nan)), job(min_shots=1))

    first, second = board.shots
    assert first.duration_s == 10 and first.physics.time_scale == 0.1 and first.characters == ["Ana"]
    assert second.duration_s == 4
    assert board.clamps == ["shot 1: duration 42 s clamped to 10 s (1–10 s)",
                            "shot 1: time_scale 0.01 clamped to 0.1 (0.1–0.5 × real speed)",
                            "shot 1: character 'Zed' is not in the job's list (dropped)",
                            "shot 2: duration not a number, 4 s used"]


def test_given_an_edited_storyboard_when_validated_then_bounds_and_characters_hold_again():
    request = job(min_shots=1, max_shots=4)
    board = clamp(answer(shot(action="one"), shot(action="two"), shot(action="three")), request)
    edited = board.model_dump(mode="json")
    edited["shots"] = [edited["shots"][2], edited["shots"][0]]

    accepted = validate_edited(edited, request)

    assert [(s.index, s.action) for s in accepted.shots] == [(0, "three"), (1, "one")]
    with pytest.raises(InputRejected, match="unknown characters Zed"):
        validate_edited({**edited, "shots": [{**edited["shots"][0], "characters": ["Zed"]}]}, request)
    with pytest.raises(InputRejected, match="0 shots|shots"):
        validate_edited({**edited, "shots": []}, request)
    with pytest.raises(InputRejected, match="duration_s"):
        validate_edited({**edited, "shots": [{**edited["shots"][0], "duration_s": 99}]}, request)


def test_given_a_storyboard_when_turned_into_shots_then_each_is_a_valid_generation_with_a_stable_distinct_id():
    request = job(min_shots=1, resolution="320x180", fps=12, style="film noir")
    board = clamp(answer(shot(action="Ana runs."), shot(action="Ana runs.", characters=["Ben"])), request)

    plans = shot_requests("pro-1", request, board, SETTINGS)
    again = shot_requests("pro-1", request, board, SETTINGS)

    assert [p.job_id for p in plans] == [p.job_id for p in again]
    assert len({p.job_id for p in plans}) == 2  # same action, another shot: another job
    assert plans[0].request["resolution"] == "320x180" and plans[0].request["fps"] == 12
    assert "Ana: a woman in a yellow coat." in plans[0].request["prompt"] and "film noir" in plans[0].request["prompt"]
    assert all(p.estimate_usd > 0 for p in plans)
    assert shot_prompt(board.shots[0], board, request).startswith("Ana runs. Camera: medium shot, static.")


def test_given_a_storyboard_when_written_as_markdown_then_it_has_one_table_row_per_shot():
    board = clamp(answer(shot(action="one | two"), shot(action="three")), job(min_shots=1))

    text = markdown(board, "pro-1")

    assert text.startswith("# Run")
    assert "| 1 | 4 | medium shot, static | one \\| two | tense | normal | Ana |  |" in text
    assert sum(line.startswith("|") for line in text.splitlines()) == 4  # header, rule, two shots


def test_given_a_character_with_a_reference_image_when_turned_into_shots_then_only_their_shots_carry_it():
    request = job(min_shots=1, characters=[{"name": "Ana", "reference_image": "s3://media/references/ana.png"},
                                           {"name": "Ben"}])
    board = clamp(answer(shot(characters=["Ana"]), shot(characters=["Ben"]), shot(characters=[])), request)

    plans = shot_requests("pro-1", request, board, SETTINGS)

    assert [p.request.get("reference_image") for p in plans] == ["s3://media/references/ana.png", None, None]
