"""The emulator answers a "storyboard" json_schema request from the script's own
sentences: deterministic, every schema property present, shots that differ."""

from __future__ import annotations

import json

from vidpipe_local.emulator.storyboard import storyboard_answer

SCHEMA = {"type": "object", "properties": {
    "episode_title": {"type": "string"},
    "scenes": {"type": "array", "items": {"type": "object", "properties": {
        "heading": {"type": "string"}, "location": {"type": "string"},
        "shots": {"type": "array", "items": {"type": "object", "properties": {
            "duration_s": {"type": "number"}, "camera_angle": {"type": "string"}, "action": {"type": "string"},
            "characters": {"type": "array", "items": {"type": "string"}}, "extra": {"type": "string"}}}}}}}}}
SCRIPT = "Scene 1: Dock\nMia ties the boat. Gulls circle.\n\nScene 2: Sea\nThe storm breaks! Mia holds the wheel."


def request(**fields) -> str:
    return json.dumps({"title": "Storm", "script": SCRIPT, "shots": {"min": 2, "max": 12},
                       "target_duration_s": 16, "characters": [{"name": "Mia"}], **fields})


def test_given_a_script_when_asked_for_a_storyboard_then_each_sentence_is_a_shot_in_its_scene():
    answer = storyboard_answer(request(), SCHEMA)

    assert answer["episode_title"] == "Storm"
    assert [scene["heading"] for scene in answer["scenes"]] == ["Scene 1: Dock", "Scene 2: Sea"]
    actions = [shot["action"] for scene in answer["scenes"] for shot in scene["shots"]]
    assert len(actions) == 4 and "Mia ties the boat." in actions[0] and "Mia holds the wheel." in actions[3]
    assert answer["scenes"][0]["shots"][0]["characters"] == ["Mia"]
    assert answer["scenes"][0]["shots"][1]["characters"] == []
    assert all(shot["extra"] is None and shot["duration_s"] == 4 for s in answer["scenes"] for shot in s["shots"])


def test_given_more_shots_than_sentences_when_asked_then_the_shots_differ_and_the_answer_repeats_exactly():
    first = storyboard_answer(request(shots={"min": 7, "max": 9}), SCHEMA)

    actions = [shot["action"] for scene in first["scenes"] for shot in scene["shots"]]
    assert len(actions) == 7 and len(set(actions)) == 7
    assert storyboard_answer(request(shots={"min": 7, "max": 9}), SCHEMA) == first


def test_given_fewer_allowed_shots_than_sentences_when_asked_then_neighbouring_sentences_share_a_shot():
    answer = storyboard_answer(request(shots={"min": 1, "max": 2}), SCHEMA)

    actions = [shot["action"] for scene in answer["scenes"] for shot in scene["shots"]]
    assert len(actions) == 2 and "Gulls circle." in actions[0] and "The storm breaks!" in actions[1]
