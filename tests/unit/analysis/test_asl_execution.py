"""The Analysis ASL executed by moto's Step Functions interpreter with stub
steps: the paths through the state machine, without media or a provider."""

import io
import json
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config

ASL = (Path(__file__).resolve().parents[3] / "statemachines" / "analysis.asl.json").read_text()
FUNCTIONS = {"ProbeVideo": "probe", "PlanAnalysis": "plan", "ExtractFrames": "extract",
             "AnalyzeChunk": "analyze", "SummarizeReport": "summarize", "FinalizeJob": "finalize"}


class StubSteps:
    """Answers each function like the real step would, small; ``fail`` makes one raise."""

    def __init__(self, fail: dict[str, str] | None = None):
        self.fail = fail or {}
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, name: str, event: dict):
        self.calls.append((name, event))
        if name in self.fail:
            return {"errorType": self.fail[name], "errorMessage": f"{name} said no", "stackTrace": []}, True
        return {
            "probe": {"duration_s": 130.0},
            "plan": {"reservation_id": "res-1", "extract": {"strategy": "scene"}, "analyze": {"model": "m"},
                     "segments": [{"index": 0}, {"index": 1}]},
            "extract": {"manifest_key": f"manifests/{event.get('segment', {}).get('index')}.json", "frames": 3,
                        "chunks": [0, 1, 2]},
            "analyze": {"chunk_key": "c"},
            "summarize": {"report_key": "reports/j/report.json"},
            "finalize": {"status": event.get("outcome")},
        }[name], False

    def named(self, name: str) -> list[dict]:
        return [event for called, event in self.calls if called == name]


@pytest.fixture
def run_analysis(monkeypatch):
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})

    def run(steps: StubSteps) -> dict:
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
                {"job_id": "j", "bucket": "b", "key": "uploads/a.mp4", "options": {}}))["executionArn"]
            deadline = time.monotonic() + 60
            while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                assert time.monotonic() < deadline, "the execution did not finish"
                time.sleep(0.02)
            return described

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
