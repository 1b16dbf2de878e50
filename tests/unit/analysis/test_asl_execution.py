"""The Analysis ASL executed by moto's Step Functions interpreter with stub
steps: the paths through the state machine, without media or a provider.

The local stack's Step Functions limits (sfn_limits.py) and clocked waits are
on, so errors match and retry as on AWS, and Retry intervals take no real time."""

import importlib.util
import io
import json
import threading
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config

from vidpipe_local.clock import VirtualClock
from vidpipe_local.stack.lambdas import LambdaApiError
from vidpipe_local.stack.sfn_limits import StepFunctionsLimits
from vidpipe_local.stack.waits import ClockedWaits

ROOT = Path(__file__).resolve().parents[3]
ASL = (ROOT / "statemachines" / "analysis.asl.json").read_text()
FUNCTIONS = {"ProbeVideo": "probe", "PlanAnalysis": "plan", "ExtractFrames": "extract",
             "AnalyzeChunk": "analyze", "SummarizeReport": "summarize", "FinalizeJob": "finalize",
             "CompactError": "compact"}


def _load_compact_error():
    spec = importlib.util.spec_from_file_location("compact_error_app", ROOT / "functions/compact_error/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compact_error = _load_compact_error()

# What a Lambda error document looks like when a handler deep in the stack raises:
# five frames of traceback, as the Python runtime reports them.
STACK_TRACE = [f'  File "/opt/python/vidpipe/analysis/extract.py", line {100 + i}, in step_{i}\n'
               f'    frames = decode(container, stream, segment, settings, budget, deadline={i})\n' * 4
               for i in range(5)]


class StubSteps:
    """Answers each function like the real step would, small; ``fail`` makes one raise,
    ``throttle`` makes Lambda refuse a function that many times."""

    def __init__(self, fail: dict[str, str] | None = None, segments: int = 2, message: str | None = None,
                 throttle: dict[str, int] | None = None):
        self.fail = fail or {}
        self.segments = segments
        self.message = message
        self.throttle = dict(throttle or {})
        self.calls: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, event: dict):
        with self._lock:
            self.calls.append((name, event))
            if self.throttle.get(name, 0) > 0:
                self.throttle[name] -= 1
                raise LambdaApiError("TooManyRequestsException", "Rate Exceeded.", 429)
        if name in self.fail:
            return {"errorType": self.fail[name], "errorMessage": self.message or f"{name} said no",
                    "stackTrace": STACK_TRACE}, True
        if name == "compact":
            return compact_error.compact(event.get("error")), False
        return {
            "probe": {"duration_s": 130.0},
            "plan": {"reservation_id": "res-1", "extract": {"strategy": "scene"}, "analyze": {"model": "m"},
                     "segments": [{"index": i} for i in range(self.segments)]},
            "extract": {"manifest_key": f"manifests/{event.get('segment', {}).get('index')}.json", "frames": 3,
                        "chunks": [0, 1, 2]},
            "analyze": {"chunk_key": "c"},
            "summarize": {"report_key": "reports/j/report.json"},
            "finalize": {"status": event.get("outcome")},
        }[name], False

    def named(self, name: str) -> list[dict]:
        return [event for called, event in self.calls if called == name]


@pytest.fixture
def aws_semantics():
    limits, waits = StepFunctionsLimits(VirtualClock()), None
    waits = ClockedWaits(limits.clock, limits.execution_remaining)
    limits.patch()
    waits.patch()
    yield limits
    waits.unpatch()
    limits.unpatch()


@pytest.fixture
def run_analysis(monkeypatch, aws_semantics):
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    histories: list[list[dict]] = []

    def run(steps: StubSteps, timeout_s: float = 60) -> dict:
        def invoke(self, event=None):
            result, errored = steps(self.function_name, json.loads(event) if isinstance(event, (str, bytes)) else event)
            return json.dumps(result), errored, ""

        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
        with mock_aws():
            role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            code = io.BytesIO()
            zipfile.ZipFile(code, "w").writestr("app.py", "def handler(event, context): pass")
            definition = ASL.replace("${ExtractMaxConcurrency}", "2").replace("${AnalyzeMaxConcurrency}", "2")
            for logical, name in FUNCTIONS.items():
                arn = boto3.client("lambda").create_function(
                    FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                    Code={"ZipFile": code.getvalue()})["FunctionArn"]
                definition = definition.replace("${%sFunctionArn}" % logical, arn)
            sfn = boto3.client("stepfunctions")
            machine = sfn.create_state_machine(name="analysis", definition=definition, roleArn=role)
            execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(
                {"job_id": "j", "bucket": "b", "key": "uploads/a.mp4", "version_id": "v1",
                 "options": {}}))["executionArn"]
            deadline = time.monotonic() + timeout_s
            while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                assert time.monotonic() < deadline, "the execution did not finish"
                time.sleep(0.02)
            histories.append(sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"])
            return described

    run.histories = histories
    return run


def test_given_working_steps_when_executed_then_every_segment_and_chunk_runs_and_the_job_is_finalized(run_analysis):
    steps = StubSteps()

    execution = run_analysis(steps)

    assert execution["status"] == "SUCCEEDED"
    assert sorted(e["segment"]["index"] for e in steps.named("extract")) == [0, 1]
    assert sorted((e["manifest_key"], e["chunk"]) for e in steps.named("analyze")) == \
        [(f"manifests/{s}.json", c) for s in (0, 1) for c in (0, 1, 2)]
    assert steps.named("summarize")[0]["plan"]["reservation_id"] == "res-1"
    assert steps.named("finalize") == [{"job_id": "j", "outcome": "SUCCEEDED", "reservation_id": "res-1",
                                        "outputs": {"report_key": "reports/j/report.json"}}]


@pytest.mark.parametrize("failing, reservation", [("probe", None), ("extract", "res-1"), ("summarize", "res-1")])
def test_given_a_step_that_rejects_when_executed_then_the_job_is_finalized_failed_with_its_reason(
        run_analysis, failing, reservation):
    steps = StubSteps(fail={failing: "InputRejected"})

    execution = run_analysis(steps)

    assert execution["status"] == "FAILED" and execution["error"] == "InputRejected"
    (finalized,) = steps.named("finalize")
    assert finalized["outcome"] == "FAILED" and finalized["reservation_id"] == reservation
    assert finalized["error"]["Error"] == "InputRejected"
    if failing == "extract":  # a segment's error reaches the job compacted, with the count of failed segments
        assert finalized["error"]["Cause"] == "2 of 2 segments failed; segment 0: extract said no"
    else:
        assert json.loads(finalized["error"]["Cause"])["errorMessage"] == f"{failing} said no"
    calls = [json.dumps(event, sort_keys=True) for event in steps.named(failing)]
    assert len(calls) == len(set(calls))  # never retried
    assert steps.named("summarize") == [] or failing == "summarize"


def test_given_a_provider_error_in_one_chunk_when_executed_then_it_is_not_retried_and_nothing_is_summarized(
        run_analysis):
    steps = StubSteps(fail={"analyze": "ProviderError"})

    execution = run_analysis(steps)

    assert execution["status"] == "FAILED" and execution["error"] == "ProviderError"
    assert steps.named("summarize") == []
    assert steps.named("finalize")[0]["error"]["Error"] == "ProviderError"


@pytest.mark.long  # over ~8 s: make long (CI) runs it
def test_given_every_one_of_180_segments_fails_with_a_long_error_then_the_job_is_finalized_failed_within_the_state_limit(
        run_analysis):
    steps = StubSteps(fail={"extract": "ProviderError"}, segments=180,
                      message="the provider answered 500: " + "upstream overloaded; " * 40)

    execution = run_analysis(steps, timeout_s=240)

    assert execution["status"] == "FAILED" and execution["error"] == "ProviderError"
    (finalized,) = steps.named("finalize")
    assert finalized["outcome"] == "FAILED" and finalized["reservation_id"] == "res-1"
    cause = finalized["error"]["Cause"]
    assert cause.startswith("180 of 180 segments failed; segment ") and ": the provider answered 500" in cause
    assert len(cause) < 400
    assert len(steps.named("compact")) == 180
    errors = [e for e in run_analysis.histories[-1] if "DataLimitExceeded" in json.dumps(e, default=str)]
    assert errors == []


def test_given_a_step_lambda_throttles_twice_then_the_asl_retries_it_and_the_job_succeeds(run_analysis):
    steps = StubSteps(throttle={"probe": 2})

    execution = run_analysis(steps)

    assert execution["status"] == "SUCCEEDED"
    assert len(steps.named("probe")) == 3


def test_given_finalize_throttled_by_its_reserved_concurrency_then_it_is_retried_longer_than_other_steps_and_runs(
        run_analysis):
    """FinalizeJob has a small reservation (FinalizeReservedConcurrency) and a job whose finalize never runs
    stays RUNNING until the sweep: its throttles get 10 attempts over up to ~6 minutes, not 4."""
    steps = StubSteps(throttle={"finalize": 8})

    execution = run_analysis(steps)

    assert execution["status"] == "SUCCEEDED"
    assert len(steps.named("finalize")) == 9
    assert steps.named("finalize")[-1]["outcome"] == "SUCCEEDED"


def test_given_a_step_lambda_that_stays_throttled_then_it_is_tried_as_often_as_its_retry_says_and_the_job_fails(
        run_analysis):
    steps = StubSteps(throttle={"probe": 100})

    execution = run_analysis(steps)

    assert execution["status"] == "FAILED" and execution["error"] == "Lambda.TooManyRequestsException"
    assert len(steps.named("probe")) == 1 + 4  # ProbeVideo's Retry: MaxAttempts 4
    assert steps.named("finalize")[0]["error"]["Error"] == "Lambda.TooManyRequestsException"
