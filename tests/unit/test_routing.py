"""The routing table (vidpipe/routing.py) and the fallback rules (generation/fallback.py), no network."""

from __future__ import annotations

import json

import pytest

from vidpipe.config import Settings, SettingsError
from vidpipe.errors import ProviderError, ProviderRetryable, RateLimited
from vidpipe.generation.fallback import failure_kind, route_key, unavailable
from vidpipe.generation.messages import InvalidJobMessage, parse_job_message
from vidpipe.generation.submit import idempotency_key
from vidpipe.providers.video import Status
from vidpipe.routing import RoutingConfigError, chat_model, escalation_model, routing_table, video_routes

CHAT = {"analysis": "gemini-2.5-flash", "enhancement": "deepseek-v3.2", "storyboard": "deepseek-v3.2",
        "summary": "gemini-2.5-flash"}


def table(**changes) -> str:
    document = {"default_tier": "standard", "priority_tiers": {"0-2": "premium", "3-9": "standard"},
                "tiers": {"standard": {"chat": CHAT, "video": [
                              {"provider": "generic", "model": "vidgen-1", "base_url": "https://a.example"},
                              {"provider": "openai", "model": "sora-2", "base_url": "https://b.example",
                               "max_resolution": "1280x720"}]},
                          "premium": {"chat": {**CHAT, "analysis": "gpt-4.1", "analysis_escalation": "claude-sonnet-4.5"},
                                      "video": [{"provider": "openai", "model": "sora-2"}]}}}
    document.update(changes)
    return json.dumps(document)


def settings(**values) -> Settings:
    return Settings(**{"routing_table_json": table(), **values})


def job(settings_: Settings, **fields):
    return parse_job_message(json.dumps({"type": "generate", "prompt": "waves", **fields}), settings_)


def test_given_the_packaged_table_when_loaded_then_standard_is_the_deployments_own_settings():
    mine = Settings(video_provider="openai", video_model="sora-2", chat_model="gpt-4.1", enhance_model="gpt-4.1")

    loaded = routing_table(mine)

    assert sorted(loaded.tiers) == ["draft", "premium", "standard"]
    assert [(r.provider, r.model, r.base_url) for r in loaded.tiers["standard"].video] == [("openai", "sora-2", None)]
    assert loaded.tiers["standard"].chat["analysis"] == "gpt-4.1"
    assert loaded.tiers["draft"].video[0].model == "vidgen-1" and loaded.tiers["premium"].video[0].model == "sora-2"


def test_given_an_unpriced_video_model_in_the_table_when_loaded_then_it_fails_naming_the_model():
    document = json.loads(table())
    document["tiers"]["premium"]["video"].append({"provider": "generic", "model": "veo-9"})

    with pytest.raises(SettingsError) as caught:
        routing_table(Settings(routing_table_json=json.dumps(document)))

    assert isinstance(caught.value, RoutingConfigError)
    assert "'veo-9'" in caught.value.reason and "tier 'premium'" in caught.value.reason


def test_given_an_unpriced_chat_model_when_loaded_then_it_fails_naming_the_model_and_purpose():
    document = json.loads(table())
    document["tiers"]["standard"]["chat"]["summary"] = "llama-99"

    with pytest.raises(RoutingConfigError, match=r"tier 'standard' summary model 'llama-99' has no price"):
        routing_table(Settings(routing_table_json=json.dumps(document)))


def test_given_a_model_priced_by_the_price_table_override_when_loaded_then_it_is_accepted():
    document = json.loads(table())
    document["tiers"]["standard"]["video"][0]["model"] = "veo-9"
    prices = json.dumps({"video": {"veo-9": {"default_per_second": "0.40"}}})

    loaded = routing_table(Settings(routing_table_json=json.dumps(document), price_table_json=prices))

    assert loaded.tiers["standard"].video[0].model == "veo-9"


@pytest.mark.parametrize(("changes", "problem"), [
    ({"default_tier": "gold"}, "default_tier 'gold' is not a tier"),
    ({"priority_tiers": {"0-2": "gold"}}, "unknown tier 'gold'"),
    ({"priority_tiers": {"5-2": "standard"}}, "'5-2' is not 'LOW-HIGH'"),
])
def test_given_an_inconsistent_table_when_loaded_then_the_problem_is_named(changes, problem):
    with pytest.raises(RoutingConfigError, match=problem):
        routing_table(Settings(routing_table_json=table(**changes)))


def test_given_a_table_file_when_configured_by_path_then_it_is_read(tmp_path):
    path = tmp_path / "routing.json"
    path.write_text(table(default_tier="premium"))

    assert routing_table(Settings(routing_table_json=str(path))).default_tier == "premium"


def test_given_priorities_when_parsed_then_each_maps_to_its_tier():
    s = settings()

    assert [job(s, priority=p).tier for p in (0, 2, 3, 9)] == ["premium", "premium", "standard", "standard"]
    assert job(s, priority=0, tier="standard").tier == "standard"  # a named tier wins


def test_given_an_unknown_tier_when_parsed_then_rejected_naming_the_known_tiers():
    with pytest.raises(InvalidJobMessage) as caught:
        job(settings(), tier="platinum")

    assert caught.value.messages == ["tier: unknown tier 'platinum'; known tiers: premium, standard"]


def test_given_a_tier_when_routed_then_its_routes_in_order_without_those_too_small():
    s = settings()

    small = video_routes(job(s, resolution="1280x720"), s)
    large = video_routes(job(s, resolution="1920x1080"), s)

    assert [(r.provider, r.model, r.url(s)) for r in small] == [("generic", "vidgen-1", "https://a.example"),
                                                               ("openai", "sora-2", "https://b.example")]
    assert [r.model for r in large] == ["vidgen-1"]


def test_given_provider_and_model_when_routed_then_the_job_is_pinned_to_that_one_route():
    s = settings()

    pinned = job(s, provider="openai", model="sora-2")

    assert pinned.pinned
    assert [(r.provider, r.model, r.url(s)) for r in video_routes(pinned, s)] == [
        ("openai", "sora-2", s.video_base_url)]


def test_given_a_tier_or_none_when_choosing_chat_models_then_the_table_or_the_settings_decide():
    s = settings(chat_model="claude-sonnet-4.5", enhance_model="gpt-4.1")

    assert chat_model(None, "analysis", s) == "claude-sonnet-4.5"  # no tier: as before tiers
    assert chat_model(None, "enhancement", s) == "gpt-4.1"
    assert chat_model("premium", "analysis", s) == "gpt-4.1"
    assert chat_model("standard", "enhancement", s) == "deepseek-v3.2"
    assert escalation_model("premium", s) == "claude-sonnet-4.5"
    assert escalation_model("standard", s) is None and escalation_model(None, s) is None


@pytest.mark.parametrize(("error", "kind"), [
    ("the service is at capacity and cannot generate this video now; try again later", "capacity"),
    ("Model overloaded", "capacity"),
    ("the request was rejected by the content policy (moderation)", "content_policy"),
    ("blocked by safety filters; capacity is not the issue", "content_policy"),  # a refusal stays a refusal
    ("the emulator was told to fail this job", "failed"),
])
def test_given_a_provider_side_failure_when_classified_then_capacity_and_policy_are_told_apart(error, kind):
    assert failure_kind(Status("failed", error=error)) == kind


@pytest.mark.parametrize(("error", "moves"), [
    (ProviderRetryable("HTTP 503 from a.example/v1/video/generate: down (gave up after 4 attempts)"), True),
    (ProviderRetryable("ConnectError calling a.example (gave up after 4 attempts)"), True),
    (ProviderRetryable("HTTP 429 from a.example/v1/video/generate: slow down", retry_after_s=30), False),
    (ProviderRetryable("HTTP 429 from a.example/v1/video/generate: quota", retry_after_s=7200), True),
    (ProviderRetryable("ReadTimeout calling a.example", answer_lost=True), False),  # may have made a paid job
    (RateLimited("the shared bucket is empty", retry_after_s=5), False),
    (ProviderError("HTTP 400 from a.example/v1/video/generate: bad prompt", status=400), False),
])
def test_given_a_submit_error_when_judged_then_only_unavailability_moves_to_the_next_route(error, moves):
    assert unavailable(error, deadline_s=3600) is moves


def test_given_routes_when_keyed_then_route_zero_keeps_the_jobs_key_and_the_others_differ():
    assert route_key("job-1", 0) == idempotency_key("job-1")
    assert len({route_key("job-1", i) for i in range(3)}) == 3
