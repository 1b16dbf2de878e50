import json

import pytest
from generation_fakes import SETTINGS, generate_job

from pydantic import ValidationError

from vidpipe.analysis.models import AnalysisOptions
from vidpipe.errors import InputRejected
from vidpipe.generation.messages import (AnalyzeJob, GenerateJob, InvalidJobMessage, execution_name,
                                         parse_job_message)
from vidpipe.input_fields import readable_error

VALID_NAME = r"[A-Za-z0-9_-]{1,80}"


def rejected(body) -> list[str]:
    with pytest.raises(InvalidJobMessage) as caught:
        parse_job_message(body if isinstance(body, str) else json.dumps(body), SETTINGS)
    assert isinstance(caught.value, InputRejected)
    return caught.value.messages


def test_given_a_minimal_generate_message_when_parsed_then_defaults_come_from_settings():
    from vidpipe.routing import video_routes

    job = parse_job_message('{"type": "generate", "prompt": "waves"}', SETTINGS)
    assert isinstance(job, GenerateJob)
    # [ROUTING] no provider/model: the tier priority 5 maps to, whose (packaged) route is the settings' own
    assert (job.provider, job.model, job.tier, job.mode, job.enhance_prompt) == (None, None, "standard", "normal",
                                                                                   False)
    assert [(r.provider, r.model) for r in video_routes(job, SETTINGS)] == [("generic", "vidgen-1")]
    assert job.max_cost_usd is None and job.client_token is None


def test_given_a_full_generate_message_when_parsed_then_every_field_is_kept():
    job = generate_job(mode="slow_motion", duration_s=4, fps=30, resolution="640x360",
                       physics={"time_scale": 0.25, "gravity_mps2": 9.81}, enhance_prompt=True,
                       provider="openai", model="sora-2", priority=2, max_cost_usd=1.5, client_token="cat-7")
    assert job.size == (640, 360)
    assert job.physics.set_values() == {"time_scale": 0.25, "gravity_mps2": 9.81}
    assert (job.provider, job.model, job.priority, str(job.max_cost_usd)) == ("openai", "sora-2", 2, "1.5000")


def test_given_an_analyze_message_when_parsed_then_analysis_defaults_come_from_settings():
    job = parse_job_message('{"type": "analyze", "s3_uri": "s3://media-bucket/uploads/a.mp4"}', SETTINGS)
    assert isinstance(job, AnalyzeJob)
    assert (job.sampling, job.fps, job.model) == ("scene", 1.0, "gemini-2.5-flash")
    assert job.bucket_and_key == ("media-bucket", "uploads/a.mp4")


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("prompt", "", "prompt: String should have at least 1 character"),
    ("prompt", "x" * 4001, "prompt: String should have at most 4000 characters"),
    ("mode", "reverse", "mode: Input should be 'normal', 'slow_motion', 'time_lapse' or 'hyperlapse'"),
    ("duration_s", 0, "duration_s: Input should be greater than 0"),
    ("duration_s", 61, "duration_s: Input should be less than or equal to 60"),
    ("fps", 0, "fps: Input should be greater than or equal to 1"),
    ("fps", 24.5, "fps: Input should be a valid integer, got a number with a fractional part"),
    ("resolution", "1280*720", "resolution: must be WIDTHxHEIGHT, e.g. 1280x720"),
    ("resolution", "8000x720", "resolution: each side must be 64–4096 px"),
    ("physics", {"gravity_mps2": 45}, "physics.gravity_mps2: 45 is outside 0–30 m/s²"),
    ("physics", {"elasticity": -0.1}, "physics.elasticity: -0.1 is outside 0–1 (coefficient of restitution)"),
    ("physics", {"spin": 3}, "physics.spin: unknown field"),
    ("physics", {"time_scale": 0.2}, "physics.time_scale applies to mode slow_motion, not normal"),
    ("enhance_prompt", "maybe", "enhance_prompt: Input should be a valid boolean, unable to interpret input"),
    ("provider", "runway", "provider: unknown video provider 'runway'; one of generic, openai, bedrock"),
    ("priority", 10, "priority: Input should be less than or equal to 9"),
    ("max_cost_usd", -1, "max_cost_usd: Input should be greater than 0"),
    ("max_cost_usd", 1e24, "max_cost_usd: Input should be less than or equal to 1000000"),
    ("max_cost_usd", "1e999999", "max_cost_usd: Input should be less than or equal to 1000000"),
    ("max_cost_usd", "1e-10", "max_cost_usd: 1E-10 USD rounds to 0.0000; the smallest amount is 0.0001"),
    ("max_cost_usd", True, "max_cost_usd: must be a number, not true"),
    ("fps", True, "fps: must be a number, not true"),
    ("duration_s", False, "duration_s: must be a number, not false"),
    ("priority", True, "priority: must be a number, not true"),
    ("duration_s", 0.001, "duration_s: 0.001 s at 24 fps is fewer than 2 frames; ask for at least 0.0833333 s"),
    ("prompt", "waves\u0000crash", "prompt: control character U+0000 at position 5 is not allowed"),
    ("prompt", "waves\x1b[31m", "prompt: control character U+001B at position 5 is not allowed"),
    ("model", "m" * 250_000, "model: String should have at most 128 characters"),
    ("provider", "p" * 250_000, "provider: String should have at most 128 characters"),
    ("client_token", "has space", "client_token: must be 1–128 printable ASCII characters without spaces"),
    ("colour", "red", "colour: unknown field"),
])
def test_given_one_bad_field_when_parsed_then_the_message_names_it(field, value, expected):
    assert rejected({"type": "generate", "prompt": "waves", field: value}) == [expected]


def test_given_a_multi_line_prompt_and_the_smallest_amounts_when_parsed_then_accepted():
    job = generate_job(prompt="a ball\n\tbounces", duration_s=0.1, fps=20, max_cost_usd="0.00005001")
    assert job.prompt == "a ball\n\tbounces" and str(job.max_cost_usd) == "0.0001"


def test_given_a_huge_type_when_parsed_then_the_reason_quotes_only_its_start():
    [message] = rejected({"type": "t" * 250_000, "prompt": "x"})
    assert message.startswith("type: unknown message type 'tttt") and "(250002 chars)" in message
    assert len(message) < 300


def test_given_several_bad_fields_when_parsed_then_every_problem_is_listed():
    messages = rejected({"type": "generate", "fps": 0, "resolution": "big"})
    assert messages == ["prompt: required", "fps: Input should be greater than or equal to 1",
                        "resolution: must be WIDTHxHEIGHT, e.g. 1280x720"]


@pytest.mark.parametrize(("body", "expected"), [
    ('{"type": "transcode", "prompt": "x"}', "type: unknown message type 'transcode'; expected 'generate', 'analyze' or 'produce'"),
    ('{"prompt": "x"}', "type: missing; expected 'generate', 'analyze' or 'produce'"),
    ('["generate"]', "message body must be a JSON object"),
    ('{"type": "generate", ', "message body is not valid JSON (EOF while parsing a value at line 1 column 21)"),
    ('{"type": "analyze", "s3_uri": "https://x/y.mp4"}', "s3_uri: must be s3://bucket/key"),
])
def test_given_a_malformed_message_when_parsed_then_the_reason_is_readable(body, expected):
    assert rejected(body) == [expected]


@pytest.mark.parametrize("options", [
    {"fps": True}, {"fps": 0}, {"fps": 31}, {"fps": "fast"}, {"budget_usd": 1e30}, {"budget_usd": "1e-10"},
    {"budget_usd": 0}, {"budget_usd": "NaN"}, {"frames_per_chunk": 65}, {"frames_per_chunk": True},
    {"sampling": "every-frame"}, {"model": "gpt-unknown"}, {"model": "g" * 1000}, {"colour": "red"},
])
def test_given_bad_analysis_options_then_a_message_and_upload_metadata_refuse_them_with_the_same_reason(options):
    with pytest.raises(ValidationError) as caught:
        AnalysisOptions.model_validate_json(json.dumps(options), context={"settings": SETTINGS})
    upload_reasons = [readable_error(e) for e in caught.value.errors()]

    assert rejected({"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4", **options}) == upload_reasons


def test_given_analysis_options_in_a_message_then_they_are_the_upload_model_with_settings_defaults():
    job = parse_job_message('{"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4", "budget_usd": 2.5, '
                            '"frames_per_chunk": 4}', SETTINGS)
    assert job.options == AnalysisOptions(sampling="scene", fps=1.0, model="gemini-2.5-flash",
                                          budget_usd="2.5", frames_per_chunk=4)


def test_given_the_same_content_when_named_then_the_execution_name_is_deterministic_and_valid():
    first = execution_name(generate_job(duration_s=4, max_cost_usd="2.5"))
    # Same content, spelled differently: key order, explicit defaults, equal money values.
    again = execution_name(parse_job_message(json.dumps(
        {"max_cost_usd": "2.50", "duration_s": 4.0, "mode": "normal", "tier": "standard", "priority": 5,
         "prompt": "a glass marble bounces on a wooden floor", "type": "generate"}), SETTINGS))
    assert first == again
    assert __import__("re").fullmatch(VALID_NAME, first)


def test_given_different_content_when_named_then_the_names_differ():
    assert execution_name(generate_job(duration_s=4)) != execution_name(generate_job(duration_s=5))
    assert execution_name(generate_job()) != execution_name(
        parse_job_message('{"type": "analyze", "s3_uri": "s3://media-bucket/a.mp4"}', SETTINGS))


def test_given_a_client_token_when_named_then_the_token_alone_decides_the_name():
    one = execution_name(generate_job(client_token="batch-7/item.1"))
    other_content = execution_name(generate_job(client_token="batch-7/item.1", prompt="something else"))
    similar_token = execution_name(generate_job(client_token="batch-7.item/1"))
    assert one == other_content
    assert one != similar_token  # both sanitise to batch-7-item-1; the digest keeps them apart
    assert one.startswith("gen-t-batch-7-item-1-")


def test_given_the_longest_token_when_named_then_the_name_fits_step_functions():
    name = execution_name(generate_job(client_token="~" * 128))
    assert __import__("re").fullmatch(VALID_NAME, name)


def test_given_an_unpriced_video_model_when_parsed_then_rejected_naming_the_field_and_the_priced_ones():
    with pytest.raises(InvalidJobMessage) as info:
        parse_job_message('{"type": "generate", "prompt": "a wave", "model": "mystery-video-9"}')
    assert any(m.startswith("model: no price for video model 'mystery-video-9'") and "vidgen-1" in m
               for m in info.value.messages)


def test_given_an_unpriced_chat_model_for_analysis_when_parsed_then_rejected():
    with pytest.raises(InvalidJobMessage, match="no price for chat model 'gpt-unknown'"):
        parse_job_message('{"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4", "model": "gpt-unknown"}')
