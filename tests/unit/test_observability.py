"""The handler decorator and the provider-call probe count what the alarms and the
dashboard read: user errors apart from system errors, 429s apart from latency."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import vidpipe.observability as observability
from vidpipe.errors import BudgetExceeded, InputRejected, ProviderError


@pytest.fixture
def emitted(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(observability, "emit_metric", lambda name, unit, value, dimensions=None, metadata=None:
                        calls.append((name, dimensions or {})))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-ProbeVideoFunction-x")
    return calls


CONTEXT = SimpleNamespace(function_name="stack-ProbeVideoFunction-x", memory_limit_in_mb=512, aws_request_id="r-1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:x")


def raising(exc: Exception):
    @observability.lambda_handler
    def handler(event, context):
        raise exc

    return handler


@pytest.mark.parametrize("error", [InputRejected("not a video"), BudgetExceeded("over budget")])
def test_given_a_handler_raising_a_user_error_when_invoked_then_it_counts_one_user_error_and_reraises(
        emitted, error):
    with pytest.raises(type(error)):
        raising(error)({}, CONTEXT)

    assert emitted == [("UserErrors", {"FunctionName": "stack-ProbeVideoFunction-x"})]


def test_given_a_handler_raising_a_provider_error_when_invoked_then_no_user_error_is_counted(emitted):
    with pytest.raises(ProviderError):
        raising(ProviderError("HTTP 400"))({}, CONTEXT)

    assert emitted == []


def test_given_job_outcomes_then_only_failures_the_user_did_not_cause_are_system_failures(emitted):
    observability.emit_job_outcome("analysis", "FAILED", "InputRejected")
    observability.emit_job_outcome("generation", "FAILED", "BudgetExceeded")
    observability.emit_job_outcome("analysis", "FAILED", "States.Timeout")
    observability.emit_job_outcome("generation", "SUCCEEDED")

    assert emitted == [("JobsFailed", {"kind": "analysis", "failure_class": "user"}),
                       ("JobsFailed", {"kind": "generation", "failure_class": "user"}),
                       ("JobsFailed", {"kind": "analysis", "failure_class": "system"}),
                       ("JobsSucceeded", {"kind": "generation"})]


@pytest.mark.parametrize(("status", "throttled"), [(200, False), (429, True), (503, False)])
def test_given_a_provider_attempt_when_it_ends_then_latency_is_measured_and_a_429_counted(emitted, status, throttled):
    with observability.provider_call("POST", "https://gateway.test/v1/chat/completions", "gemini-2.5-flash") as report:
        report(status)

    assert emitted[0] == ("ProviderLatency", {"host": "gateway.test"})
    assert (("ProviderThrottled", {"host": "gateway.test"}) in emitted) is throttled


def test_given_a_provider_attempt_that_raises_then_its_latency_is_still_measured(emitted):
    with pytest.raises(TimeoutError), observability.provider_call("POST", "https://gateway.test/v1/x"):
        raise TimeoutError("read timeout")

    assert emitted == [("ProviderLatency", {"host": "gateway.test"})]
