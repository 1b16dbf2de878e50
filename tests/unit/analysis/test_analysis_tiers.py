"""[ROUTING] Analysis by tier: the tier's models, and a chunk escalated once to the tier's next model."""

import json

import pytest
from analysis_fakes import BUCKET, ScriptedGateway, chat_with, completion, describe_every_image, put_segment

from vidpipe.analysis import keys
from vidpipe.analysis.analyze import STRUCTURED_ATTEMPTS, analyze_chunk
from vidpipe.analysis.models import AnalysisOptions, AnalyzeEvent, AnalyzeSpec, ChunkResult, VideoInfo
from vidpipe.analysis.plan import plan_analysis
from vidpipe.config import Settings
from vidpipe.errors import ProviderError
from vidpipe.generation.messages import parse_job_message
from vidpipe.spend.prices import PriceTable

CHEAP, BETTER = "gemini-2.5-flash", "gpt-4.1"


def event(spec: AnalyzeSpec) -> AnalyzeEvent:
    return AnalyzeEvent(job_id="job-1", manifest_key=keys.manifest_key("job-1", 0), chunk=0, analyze=spec)


def cheap_model_skips_a_frame(body: dict):
    """The cheap model always leaves the last frame out (fails validation); the better one answers."""
    if body["model"] != CHEAP:
        return describe_every_image(body)
    frames = json.loads(describe_every_image(body).json()["choices"][0]["message"]["content"])["frames"][:-1]
    return completion(json.dumps({"frames": frames}), request_id="chatcmpl-cheap")


def test_given_a_chunk_the_cheap_model_answers_invalidly_when_analyzed_then_it_is_escalated_once_and_recorded(
        s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [0.5, 1.5, 2.5], frames_per_chunk=4)
    gateway = ScriptedGateway(cheap_model_skips_a_frame)
    spec = AnalyzeSpec(model=CHEAP, provider="gemini", detail="high", escalation_model=BETTER)

    result = analyze_chunk(event(spec), s3, BUCKET, chat_with(gateway), accounting)

    stored = ChunkResult.model_validate_json(s3.get_object(Bucket=BUCKET, Key=result.chunk_key)["Body"].read())
    assert (stored.model, stored.escalated_from, len(stored.frames)) == (BETTER, CHEAP, 3)
    assert [b["model"] for b in gateway.bodies] == [CHEAP] * STRUCTURED_ATTEMPTS + [BETTER]
    # every attempt is paid for, each under its own model and provider
    assert [(c.model, c.provider) for c in accounting.entries()] == [(CHEAP, "gemini")] * STRUCTURED_ATTEMPTS + [
        (BETTER, "openai")]


def test_given_no_escalation_model_when_the_answers_stay_invalid_then_the_chunk_fails_as_before(s3, accounting):
    put_segment(s3, "job-1", 0, 0.0, 10.0, [0.5, 1.5, 2.5], frames_per_chunk=4)
    gateway = ScriptedGateway(cheap_model_skips_a_frame)

    with pytest.raises(ProviderError, match="expected frame indices"):
        analyze_chunk(event(AnalyzeSpec(model=CHEAP, provider="gemini", detail="high")), s3, BUCKET,
                      chat_with(gateway), accounting)

    assert [b["model"] for b in gateway.bodies] == [CHEAP] * STRUCTURED_ATTEMPTS


def video() -> VideoInfo:
    return VideoInfo(duration_s=60.0, fps=30.0, frame_count=1800, width=1280, height=720, codec="h264",
                     size_bytes=10_000_000)


def test_given_a_tier_when_planning_then_its_models_are_used_and_the_escalation_is_reserved(accounting):
    settings = Settings(default_fps=1.0, frames_per_chunk=8)  # the packaged routing table
    prices = PriceTable.packaged()

    untiered = plan_analysis("job-1", video(), AnalysisOptions(), settings, accounting, prices.chat_cost)
    draft = plan_analysis("job-2", video(), AnalysisOptions(tier="draft"), settings, accounting, prices.chat_cost)
    premium = plan_analysis("job-3", video(), AnalysisOptions(tier="premium"), settings, accounting,
                            prices.chat_cost)

    assert (untiered.analyze.model, untiered.analyze.escalation_model) == (settings.chat_model, None)
    assert (draft.analyze.model, draft.analyze.escalation_model) == ("gemini-2.5-flash", "gpt-4.1")
    assert draft.estimate.cost_usd > untiered.estimate.cost_usd  # the escalation is covered
    assert (premium.analyze.model, premium.analyze.escalation_model) == ("gpt-4.1", "claude-sonnet-4.5")


def test_given_an_analyze_message_with_a_tier_when_parsed_then_the_tiers_analysis_model_is_used():
    settings = Settings()

    tiered = parse_job_message('{"type": "analyze", "s3_uri": "s3://media-bucket/uploads/a.mp4", "tier": "premium"}', settings)
    plain = parse_job_message('{"type": "analyze", "s3_uri": "s3://media-bucket/uploads/a.mp4"}', settings)

    assert (tiered.tier, tiered.model) == ("premium", "gpt-4.1")
    assert (plain.tier, plain.model) == (None, settings.chat_model)
