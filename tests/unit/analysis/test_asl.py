"""The Analysis state machine definition: structure and contracts (the local
stack executes it end to end in tests/integration)."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ASL_TEXT = (ROOT / "statemachines" / "analysis.asl.json").read_text()
ASL = json.loads(ASL_TEXT)
NEVER_RETRIED = {"InputRejected", "BudgetExceeded", "ProviderError", "States.ALL"}


def all_states(definition=ASL, parent=None):
    for name, state in definition["States"].items():
        yield name, state, parent
        if state["Type"] == "Map":
            yield from all_states(state["ItemProcessor"], name)


def test_given_the_definition_then_its_substitutions_are_exactly_the_templates():
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    declared = set(template["Resources"]["AnalysisStateMachine"]["Properties"]["DefinitionSubstitutions"])

    assert set(re.findall(r"\$\{(\w+)\}", ASL_TEXT)) == declared


def test_given_every_task_then_it_invokes_a_function_arn_substitution_directly():
    tasks = [(name, state) for name, state, _ in all_states() if state["Type"] == "Task"]

    assert {name for name, _ in tasks} >= {"ProbeVideo", "PlanAnalysis", "ExtractFrames", "AnalyzeChunk",
                                           "SummarizeReport", "FinalizeSucceeded", "FinalizeFailed"}
    assert all(re.fullmatch(r"\$\{\w+FunctionArn\}", state["Resource"]) for _, state in tasks)


def test_given_top_level_tasks_and_the_map_then_every_one_catches_all_into_finalize_failed():
    assert ASL["States"]["SegmentError"]["Next"] == "FinalizeFailed"
    for name, state in ASL["States"].items():
        if state["Type"] in ("Task", "Map") and name != "FinalizeFailed":
            (catch,) = state["Catch"]
            assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FinalizeFailed"}, name


def test_given_any_retry_then_non_retryable_errors_are_never_listed_and_backoff_has_full_jitter():
    for name, state, _ in all_states():
        for rule in state.get("Retry", []):
            assert not NEVER_RETRIED & set(rule["ErrorEquals"]), name
            assert rule["BackoffRate"] == 2 and rule["JitterStrategy"] == "FULL" and 3 <= rule["MaxAttempts"] <= 5


@pytest.mark.parametrize("task", ["AnalyzeChunk", "SummarizeReport"])
def test_given_provider_steps_then_transient_provider_errors_are_retried(task):
    (state,) = [s for name, s, _ in all_states() if name == task]

    retried = {error for rule in state["Retry"] for error in rule["ErrorEquals"]}
    assert {"ProviderRetryable", "RateLimited", "Lambda.ServiceException"} <= retried


def test_given_the_segment_map_then_it_is_distributed_over_the_plan_and_bounded_by_the_substituted_limits():
    segment_map = ASL["States"]["ExtractAndAnalyze"]
    chunk_map = segment_map["ItemProcessor"]["States"]["AnalyzeChunks"]
    init = ASL["States"]["Init"]["Parameters"]["limits"]

    assert segment_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert segment_map["ItemsPath"] == "$.plan.segments"
    assert segment_map["MaxConcurrencyPath"] == "$.limits.extract"
    assert init["extract.$"] == "States.StringToJson('${ExtractMaxConcurrency}')"
    assert chunk_map["ItemsPath"] == "$.extracted.chunks"
    assert chunk_map["MaxConcurrencyPath"] == "$.analyze_max_concurrency"
    assert segment_map["ItemSelector"]["analyze_max_concurrency.$"] == "$.limits.analyze"
    assert init["analyze.$"] == "States.StringToJson('${AnalyzeMaxConcurrency}')"


def test_given_the_segment_map_then_each_segment_hands_back_a_small_result_or_its_error():
    segment_map = ASL["States"]["ExtractAndAnalyze"]
    child = segment_map["ItemProcessor"]["States"]

    assert child["AnalyzeChunks"]["ResultPath"] is None  # chunk results live in S3
    assert child["SegmentDone"]["Parameters"] == {"segment.$": "$.segment.index", "frames.$": "$.extracted.frames",
                                                  "failed": False}
    assert child["SegmentFailed"]["Parameters"]["error.$"] == "$.error"
    for name in ("ExtractFrames", "AnalyzeChunks"):
        assert child[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                         "Next": "SegmentFailed"}]
    assert segment_map["Next"] == "CheckSegments"


def test_given_finalize_calls_then_they_follow_the_finalize_contract():
    ok = ASL["States"]["FinalizeSucceeded"]["Parameters"]
    failed = ASL["States"]["FinalizeFailed"]

    assert ok == {"job_id.$": "$.job_id", "outcome": "SUCCEEDED", "reservation_id.$": "$.plan.reservation_id",
                  "outputs.$": "$.report"}
    assert failed["Parameters"] == {"job_id.$": "$.job_id", "outcome": "FAILED", "error.$": "$.error",
                                    "reservation_id.$": "$.plan.reservation_id"}
    assert failed["Next"] == "Failed" and failed["Catch"][0]["Next"] == "Failed"
    assert ASL["States"]["Init"]["Parameters"]["plan"] == {"reservation_id": None}  # a failure before the plan
