"""Static checks of statemachines/generation.asl.json: wiring, retries and failure paths."""

import json
import re
from pathlib import Path

import pytest

from vidpipe.generation.events import JobEvent, PollEvent, SubmitEvent

ROOT = Path(__file__).resolve().parents[3]
ASL = json.loads((ROOT / "statemachines/generation.asl.json").read_text())
STATES = ASL["States"]
TASKS = {name: s for name, s in STATES.items() if s["Type"] == "Task"}
NEVER_RETRIED = {"InputRejected", "BudgetExceeded", "ProviderError", "DownloadRefused", "OutputInvalid",
                 "GenerationTimedOut", "States.ALL"}
PROVIDER_CALLS = ("EnhancePrompt", "SubmitGeneration", "CheckGeneration", "StoreVideo")


def successors(state: dict) -> list[str]:
    names = [state.get("Next"), state.get("Default")]
    names += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    return [n for n in names if n]


def test_given_the_definition_then_every_transition_targets_a_state_and_every_state_is_reachable():
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            assert name in STATES, f"transition to missing state {name}"
            todo += successors(STATES[name])
    assert seen == set(STATES)


def test_given_the_template_then_every_function_placeholder_is_substituted():
    placeholders = {re.fullmatch(r"\$\{(\w+)\}", t["Resource"])[1] for t in TASKS.values()}
    assert placeholders == {"EnhancePromptFunctionArn", "ReserveGenerationFunctionArn", "SubmitGenerationFunctionArn",
                            "CheckGenerationFunctionArn", "StoreVideoFunctionArn", "FinalizeJobFunctionArn"}
    template = (ROOT / "template.yaml").read_text()
    section = template[template.index("GenerationStateMachine:"):]
    for placeholder in placeholders:
        assert re.search(rf"^\s+{placeholder}: !GetAtt \w+\.Arn", section, re.M), placeholder


@pytest.mark.parametrize("name", sorted(TASKS))
def test_given_any_task_then_errors_that_retrying_cannot_fix_are_never_retried(name):
    retried = {e for r in TASKS[name].get("Retry", []) for e in r["ErrorEquals"]}
    assert not retried & NEVER_RETRIED
    assert "Lambda.ServiceException" in retried and "Lambda.TooManyRequestsException" in retried


@pytest.mark.parametrize("name", PROVIDER_CALLS)
def test_given_a_provider_calling_task_then_transient_provider_errors_are_retried_with_backoff(name):
    [rule] = [r for r in TASKS[name]["Retry"] if "ProviderRetryable" in r["ErrorEquals"]]
    assert "RateLimited" in rule["ErrorEquals"]
    assert rule["BackoffRate"] > 1 and 1 < rule["MaxAttempts"] <= 4


@pytest.mark.parametrize("name", sorted(set(TASKS) - {"FinalizeFailed"}))
def test_given_any_failure_then_it_is_caught_into_finalize_failed_with_the_error(name):
    last = TASKS[name]["Catch"][-1]
    assert last == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FinalizeFailed"}


def test_given_finalize_failed_then_it_releases_the_reservation_and_ends_in_a_fail_state():
    params = STATES["FinalizeFailed"]["Parameters"]
    assert params == {"job_id.$": "$.job_id", "outcome": "FAILED", "error.$": "$.error",
                      "reservation_id.$": "$.reservation.reservation_id"}
    assert STATES["Init"]["Parameters"]["reservation"] == {"reservation_id": None}  # readable before Reserve
    assert STATES[STATES["FinalizeFailed"]["Next"]]["Type"] == "Fail"


def test_given_the_poll_loop_then_wait_reads_the_policy_and_only_a_completed_clip_leaves_it():
    assert STATES["WaitForVideo"]["SecondsPath"] == "$.poll.wait_seconds"
    assert STATES["WaitForVideo"]["Next"] == "CheckGeneration"
    assert STATES["CheckGeneration"]["ResultPath"] == "$.poll"
    choice = STATES[STATES["CheckGeneration"]["Next"]]
    assert choice["Choices"] == [{"Variable": "$.poll.state", "StringEquals": "completed", "Next": "StoreVideo"}]
    assert choice["Default"] == "WaitForVideo"


def test_given_enhancement_failures_then_a_provider_outage_falls_back_to_the_original_prompt():
    [fallback, catch_all] = TASKS["EnhancePrompt"]["Catch"]
    assert set(fallback["ErrorEquals"]) == {"ProviderError", "ProviderRetryable", "RateLimited"}
    assert STATES[fallback["Next"]]["Parameters"]["prompt.$"] == "$.request.prompt"
    assert catch_all["Next"] == "FinalizeFailed"


@pytest.mark.parametrize(("event_file", "model"), [
    ("enhance_prompt.json", JobEvent), ("reserve_generation.json", JobEvent),
    ("submit_generation.json", SubmitEvent), ("check_generation.json", PollEvent), ("store_video.json", PollEvent)])
def test_given_the_sample_events_then_each_parses_as_its_functions_event(event_file, model):
    event = model.model_validate_json((ROOT / "events" / event_file).read_text())
    assert event.job_id and event.request.type == "generate"
