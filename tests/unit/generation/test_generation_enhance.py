import json

import httpx
import pytest
from generation_fakes import generate_job

from vidpipe.errors import ProviderError
from vidpipe.generation.enhance import enhance_prompt
from vidpipe.generation.physics import PhysicsSuggestion, clamp_suggestion
from vidpipe.providers.chat import ChatClient
from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.image_tokens import text_tokens

MODEL = "gemini-2.5-flash"
SCENE = {"initial_state": "a marble rests at the table edge", "forces": ["gravity"], "materials": ["glass"],
         "temporal_changes": ["falls, bounces twice"]}


def chat_answering(content: str | None, status: int = 200, seen: list | None = None,
                   headers: list | None = None) -> ChatClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        if headers is not None:
            headers.append(request.headers)
        if content is None:
            return httpx.Response(status, text="<html>oops</html>")
        return httpx.Response(status, json={"id": "chatcmpl-1", "choices": [{"message": {"content": content}}],
                                            "usage": {"prompt_tokens": 321, "completion_tokens": 123}})

    return ChatClient("https://chat.test/v1", "sk-test", http_client=httpx.Client(transport=httpx.MockTransport(handle)),
                      policy=RetryPolicy(max_attempts=1), sleep=lambda _s: None)


def answer(prompt="A glass marble falls in slow motion...", **physics) -> str:
    values = {"time_scale": None, "compression": None, "hyperlapse_speed": None, "gravity_mps2": None,
              "elasticity": None, "viscosity_mpas": None, **physics}
    return json.dumps({"prompt": prompt, "scene": SCENE, "physics": values})


def test_given_out_of_range_physics_when_clamped_then_each_value_lands_in_its_range_with_a_note():
    suggestion = PhysicsSuggestion(time_scale=0.9, gravity_mps2=-3, elasticity=1.7, viscosity_mpas=1e6,
                                   compression=500, hyperlapse_speed=float("nan"))
    physics, notes = clamp_suggestion("slow_motion", suggestion)
    assert physics.set_values() == {"time_scale": 0.5, "gravity_mps2": 0, "elasticity": 1, "viscosity_mpas": 1000}
    assert notes == ["time_scale 0.9 clamped to 0.5 (0.1–0.5 × real speed)",
                     "compression dropped: applies to mode time_lapse",
                     "hyperlapse_speed dropped: applies to mode hyperlapse",
                     "gravity_mps2 -3 clamped to 0 (0–30 m/s²)",
                     "elasticity 1.7 clamped to 1 (0–1 (coefficient of restitution))",
                     "viscosity_mpas 1e+06 clamped to 1000 (0.001–1000 mPa·s)"]


@pytest.mark.parametrize(("mode", "physics", "expected"), [
    ("time_lapse", {"compression": 5}, {"compression": 10}),
    ("time_lapse", {"compression": 5000}, {"compression": 1000}),
    ("hyperlapse", {"hyperlapse_speed": 1}, {"hyperlapse_speed": 2}),
    ("slow_motion", {"time_scale": 0.01}, {"time_scale": 0.1}),
])
def test_given_a_mode_parameter_out_of_range_when_clamped_then_it_meets_the_bound(mode, physics, expected):
    assert clamp_suggestion(mode, PhysicsSuggestion(**physics))[0].set_values() == expected


def test_given_a_good_answer_when_enhancing_then_prompt_scene_and_clamped_physics_are_returned(accounting):
    seen: list = []
    chat = chat_answering(answer(time_scale=0.05, gravity_mps2=9.81), seen=seen)
    job = generate_job(mode="slow_motion", enhance_prompt=True)

    result = enhance_prompt("job-1", job, chat, accounting, MODEL)

    assert result.enhanced and result.fallback_reason is None
    assert result.prompt == "A glass marble falls in slow motion..."
    assert result.scene.forces == ["gravity"]
    assert result.physics.set_values() == {"time_scale": 0.1, "gravity_mps2": 9.81}
    assert result.notes == ["time_scale 0.05 clamped to 0.1 (0.1–0.5 × real speed)"]
    assert seen[0]["response_format"]["type"] == "json_schema"
    assert "slow motion" in seen[0]["messages"][0]["content"].lower()


def test_given_physics_set_by_the_user_when_enhancing_then_the_users_values_win(accounting):
    chat = chat_answering(answer(time_scale=0.4, elasticity=0.3))
    job = generate_job(mode="slow_motion", physics={"time_scale": 0.2})

    result = enhance_prompt("job-1", job, chat, accounting, MODEL)

    assert result.physics.set_values() == {"time_scale": 0.2, "elasticity": 0.3}


def test_given_an_enhancement_when_done_then_its_usage_is_in_the_ledger_and_rate_limited(accounting):
    sent: list = []
    enhance_prompt("job-1", generate_job(), chat_answering(answer(), headers=sent), accounting, MODEL)

    [call] = accounting.calls
    assert (call.job_id, call.step, call.provider, call.model) == ("job-1", "enhance", "gemini", MODEL)
    assert (call.input_tokens, call.output_tokens, call.request_id, call.confirmed) == (321, 123, "chatcmpl-1", True)
    assert call.call_key == sent[0]["x-client-request-id"]  # the id the provider bills it under
    assert accounting.intents == {}
    assert accounting.acquired and accounting.acquired[0][0] == "gemini" and accounting.acquired[0][1] > 1000


@pytest.mark.parametrize(("content", "reason"), [
    ("Sure! Here is your scene: a marble...", "answer: Invalid JSON"),
    (json.dumps({"prompt": "x", "scene": SCENE}), "physics: Field required"),
    (json.dumps({"prompt": "   ", "scene": SCENE, "physics": {}}), "prompt: String should have at least 1 character"),
    (json.dumps({"prompt": "x", "scene": {"forces": "gravity"}, "physics": {}}), "scene.initial_state: Field required"),
    (answer(gravity_mps2="strong"), "physics.gravity_mps2: Input should be a valid number"),
])
def test_given_a_malformed_answer_when_enhancing_then_the_original_prompt_is_used_and_why_is_recorded(
        accounting, content, reason):
    job = generate_job(mode="slow_motion", physics={"time_scale": 0.3})

    result = enhance_prompt("job-1", job, chat_answering(content), accounting, MODEL)

    assert not result.enhanced
    assert result.prompt == job.prompt and result.physics == job.physics
    assert reason in result.fallback_reason and result.fallback_reason.endswith("the original prompt was used")
    [call] = accounting.calls  # the tokens of a useless answer were still spent, as the provider reported
    assert (call.confirmed, call.input_tokens, call.output_tokens) == (True, 321, 123)


def test_given_a_body_that_is_not_a_completion_when_enhancing_then_it_falls_back_and_is_recorded_at_the_estimate(
        accounting):
    job = generate_job()
    seen: list = []

    result = enhance_prompt("job-1", job, chat_answering(None, seen=seen), accounting, MODEL)

    assert not result.enhanced and "malformed completion body" in result.fallback_reason
    [call] = accounting.calls
    sent_text = sum(text_tokens(m["content"]) for m in seen[0]["messages"])
    assert (call.confirmed, call.input_tokens, call.output_tokens) == (False, sent_text, seen[0]["max_tokens"])
    assert call.output_tokens > 0  # never at $0: the provider may have generated a whole answer


def test_given_the_provider_refuses_when_enhancing_then_the_error_propagates_and_nothing_is_billed(accounting):
    with pytest.raises(ProviderError, match="HTTP 400"):
        enhance_prompt("job-1", generate_job(), chat_answering("{}", status=400), accounting, MODEL)

    assert accounting.calls == [] and accounting.intents == {}
