"""The local stack fails the way AWS fails: Lambda timeouts, payload and
concurrency limits, Step Functions' state and request sizes, history, execution and Task
timeouts, DynamoDB's item and transaction limits, SQS's message size.

Handlers installed here are stand-ins for a function's code (the limit under
test is the stack's, not the handler's); everything else is the local stack
as the other integration tests use it."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import vidpipe.aws
import vidpipe.clock
from vidpipe.jobs import JobStore
from vidpipe_local.clock import VirtualClock
from vidpipe_local.stack.lambdas import PAYLOAD_LIMIT_BYTES, RESPONSE_LIMIT_BYTES, LocalFunction
from vidpipe_local.stack.stack import REPO_ROOT
from vidpipe_local.stack.template import ACCOUNT_ID

pytestmark = pytest.mark.integration

FINALIZE = "FinalizeJobFunction"  # Timeout 60 (Globals), no provider calls


def install(stack, logical_id: str, handler) -> LocalFunction:
    fn = stack.built.functions[logical_id]
    fn._callable = handler
    return fn


def marker(stack, name: str) -> dict | None:
    return stack.ddb.get_item(TableName=stack.table, Key={"pk": {"S": "TEST"}, "sk": {"S": name}}).get("Item")


def put_marker(name: str, table: str) -> None:
    vidpipe.aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "TEST"}, "sk": {"S": name}})


def add_state_machine(stack, name: str, definition: dict) -> str:
    return stack.sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                          roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/vidpipe-local-role")["stateMachineArn"]


def run_execution(stack, machine_arn: str, execution_input: dict | None = None, timeout_s: float = 60,
                  **start) -> dict:
    arn = stack.sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(execution_input or {}),
                                    **start)["executionArn"]
    return stack.wait_for_execution(arn, timeout_s=timeout_s)


def task(function_arn: str, **fields) -> dict:
    return {"Type": "Task", "Resource": function_arn, **fields}


# ------------------------------------------------------------------ Lambda: timeout


def test_given_a_handler_that_sleeps_past_its_timeout_then_the_caller_gets_sandbox_timedout_and_later_writes_never_happen(
        local_stack):
    s = local_stack
    remaining: list[int] = []

    def slow(event, context):
        remaining.append(context.get_remaining_time_in_millis())
        vidpipe.clock.sleep(45)
        remaining.append(context.get_remaining_time_in_millis())
        put_marker("before-timeout", s.table)
        vidpipe.clock.sleep(30)  # the function's Timeout is 60 s: Lambda freezes it at 60
        put_marker("after-timeout", s.table)
        return {"ok": True}

    install(s, FINALIZE, slow)

    result, errored = s.invoke(FINALIZE, {})

    assert errored and result["errorType"] == "Sandbox.Timedout"
    assert result["errorMessage"].endswith("Task timed out after 60.00 seconds")
    assert remaining[0] == pytest.approx(60_000, abs=1_000) and remaining[1] == pytest.approx(15_000, abs=1_000)
    assert marker(s, "before-timeout") is not None
    assert marker(s, "after-timeout") is None


def test_given_a_handler_hung_in_a_real_wait_when_its_timeout_passes_then_it_is_cut_off_and_its_late_aws_call_raises(
        make_stack):
    # One real second inside a handler counts for 200 clock seconds: a 0.6 s real hang is 120 s.
    s = make_stack(clock=VirtualClock(real_time_scale=200))
    released, finished = threading.Event(), threading.Event()
    late_call: list[BaseException] = []

    def hung(event, context):
        try:
            released.wait(5)  # a provider that does not answer (real time)
            try:
                put_marker("late", s.table)
            except BaseException as exc:
                late_call.append(exc)
                raise
        finally:
            finished.set()

    install(s, FINALIZE, hung)

    started = time.monotonic()
    result, errored = s.invoke(FINALIZE, {})
    took = time.monotonic() - started
    released.set()
    assert finished.wait(5)

    assert errored and result["errorType"] == "Sandbox.Timedout"
    assert took < 2.0  # cut at 60 clock seconds = 0.3 real seconds, not after the 5 s hang
    assert late_call and type(late_call[0]).__name__ == "InvocationCancelled"
    assert marker(s, "late") is None


def test_given_a_task_that_times_out_in_an_execution_then_step_functions_sees_sandbox_timedout_and_the_job_fails(
        local_stack):
    s = local_stack

    def slow_probe(event, context):
        vidpipe.clock.sleep(context.get_remaining_time_in_millis() / 1000 + 1)

    install(s, "ProbeVideoFunction", slow_probe)
    s.s3.put_object(Bucket=s.bucket, Key="uploads/slow.mp4", Body=b"x")
    s.drain()
    (execution,) = s.executions(s.analysis_arn)

    s.wait_for_execution(execution["executionArn"])
    job = JobStore(s.table, client=s.ddb).get(execution["name"])

    failures = [e["lambdaFunctionFailedEventDetails"] for e in s.history(execution["executionArn"])
                if e["type"] == "LambdaFunctionFailed"]
    assert failures[0]["error"] == "Sandbox.Timedout"
    assert "Task timed out after 120.00 seconds" in failures[0]["cause"]
    assert job["status"] == "FAILED" and job["error"]["error"] == "Sandbox.Timedout"


# ------------------------------------------------------------------ Lambda: payload


def test_given_a_request_over_6_mb_when_invoked_then_lambda_refuses_it_before_the_handler_runs(local_stack):
    s = local_stack
    calls: list[dict] = []
    install(s, FINALIZE, lambda event, context: calls.append(event))

    with pytest.raises(ClientError) as refused:
        s.invoke(FINALIZE, {"blob": "x" * (PAYLOAD_LIMIT_BYTES + 1)})

    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert calls == []


def test_given_a_response_over_6_mb_when_invoked_then_the_caller_gets_a_function_error(local_stack):
    s = local_stack
    install(s, FINALIZE, lambda event, context: {"blob": "x" * RESPONSE_LIMIT_BYTES})

    through_the_api = s.invoke(FINALIZE, {})
    through_a_poller = s.lambdas.invoke(s.built.functions[FINALIZE].function_name, {})

    for result, errored in (through_the_api, through_a_poller):
        assert errored and result["errorType"] == "Function.ResponseSizeTooLarge"


# ------------------------------------------------------------------ Lambda: concurrency


def reserve(tmp_path: Path, logical_id: str, reserved: int) -> Path:
    """A copy of the project whose template reserves ``reserved`` concurrency for one function."""
    root = tmp_path / "project"
    root.mkdir()
    for folder in ("functions", "statemachines"):
        (root / folder).symlink_to(REPO_ROOT / folder)
    template = (REPO_ROOT / "template.yaml").read_text()
    block = re.search(rf"^  {logical_id}:\n(?:(?:    .*)?\n)+", template, re.MULTILINE).group(0)
    own = re.sub(r"^      ReservedConcurrentExecutions: .*\n", "", block, flags=re.MULTILINE)
    own = own.replace("\n    Properties:\n", f"\n    Properties:\n      ReservedConcurrentExecutions: {reserved}\n", 1)
    (root / "template.yaml").write_text(template.replace(block, own))
    return root


def hold_one_invocation(stack, logical_id: str) -> tuple[threading.Event, threading.Thread]:
    entered, release = threading.Event(), threading.Event()

    def held(event, context):
        if event.get("hold"):
            entered.set()
            release.wait(10)
        return {"done": True}

    install(stack, logical_id, held)
    holder = threading.Thread(target=stack.invoke, args=(logical_id, {"hold": True}), daemon=True)
    holder.start()
    assert entered.wait(10)
    return release, holder


def test_given_reserved_concurrency_in_the_template_when_it_is_used_up_then_the_next_invocation_is_throttled(
        make_stack, tmp_path):
    s = make_stack(root=reserve(tmp_path, FINALIZE, 1))
    release, holder = hold_one_invocation(s, FINALIZE)

    with pytest.raises(ClientError) as throttled:
        s.invoke(FINALIZE, {})
    other, other_errored = s.invoke("PlanAnalysisFunction", {})  # unreserved functions are not affected
    release.set()
    holder.join(10)

    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert other_errored and other["errorType"] != "TooManyRequestsException"  # it ran (and rejected {})
    assert s.invoke(FINALIZE, {})[0] == {"done": True}  # the slot is free again


def test_given_the_account_limit_is_reached_when_another_function_is_invoked_then_it_is_throttled(make_stack):
    s = make_stack()
    assert s.lambdas.concurrency.account_limit == 1000  # Lambda's default per account and region
    # Leave the unreserved pool room for exactly one invocation.
    s.lambdas.concurrency.account_limit = sum(s.lambdas.concurrency.reserved.values()) + 1
    release, holder = hold_one_invocation(s, "PlanAnalysisFunction")

    with pytest.raises(ClientError) as throttled:
        s.invoke("ProbeVideoFunction", {})
    release.set()
    holder.join(10)

    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"


def test_given_a_throttled_task_then_the_asl_sees_lambda_too_many_requests_and_retries_it_only_as_its_retry_says(
        make_stack, tmp_path):
    s = make_stack(root=reserve(tmp_path, FINALIZE, 1))
    release, holder = hold_one_invocation(s, FINALIZE)
    arn = s.built.att(FINALIZE, "Arn")
    retry = {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "MaxAttempts": 2,
             "BackoffRate": 1}
    machine = add_state_machine(s, "throttled", {"StartAt": "Call", "States": {"Call": task(arn, Retry=[retry],
                                                                                             End=True)}})

    execution = run_execution(s, machine)
    release.set()
    holder.join(10)

    assert execution["status"] == "FAILED" and execution["error"] == "Lambda.TooManyRequestsException"
    attempts = [e for e in s.history(execution["executionArn"]) if e["type"] == "LambdaFunctionFailed"]
    assert len(attempts) == 1 + retry["MaxAttempts"]


# ------------------------------------------------------------------ Step Functions


def test_given_a_state_output_over_256_kib_then_the_execution_fails_with_data_limit_exceeded_past_a_states_all_catch(
        local_stack):
    s = local_stack
    install(s, FINALIZE, lambda event, context: {"blob": "x" * (256 * 1024)})
    arn = s.built.att(FINALIZE, "Arn")
    machine = add_state_machine(s, "too-big", {"StartAt": "Big", "States": {
        "Big": task(arn, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handled"}], End=True),
        "Handled": {"Type": "Succeed"}}})

    execution = run_execution(s, machine)

    assert execution["status"] == "FAILED" and execution["error"] == "States.DataLimitExceeded"
    entered = [e["stateEnteredEventDetails"]["name"] for e in s.history(execution["executionArn"])
               if "stateEnteredEventDetails" in e]
    assert "Handled" not in entered


def all_events(stack, execution_arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = stack.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000,
                                               **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def test_given_an_execution_past_the_history_event_limit_then_it_fails(local_stack):
    s = local_stack
    # The limit is AWS's 25,000 by default; the interpreter takes ~2 ms an event, so
    # this test lowers it to keep the suite fast (the mechanism is the same).
    assert s.sfn_limits.history_event_limit == 25_000
    s.sfn_limits.history_event_limit = 1_000
    machine = add_state_machine(s, "long-history", {"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
        "More": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 20_000, "Next": "Count"}],
                 "Default": "Done"},
        "Done": {"Type": "Succeed"}}})

    execution = run_execution(s, machine, {"n": 0})

    assert execution["status"] == "FAILED" and execution["error"] == "States.Runtime"
    events = all_events(s, execution["executionArn"])
    assert events[-1]["type"] == "ExecutionFailed"
    assert "maximum number of history events (1000)" in events[-1]["executionFailedEventDetails"]["cause"]
    assert 1_000 <= len(events) <= 1_002


def test_given_a_state_machine_timeout_when_a_wait_outlasts_it_then_the_execution_times_out_at_the_deadline(
        local_stack):
    s = local_stack
    machine = add_state_machine(s, "deadline", {"TimeoutSeconds": 600, "StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 3600, "Next": "Done"}, "Done": {"Type": "Succeed"}}})
    started = s.clock.now()

    execution = run_execution(s, machine)

    assert execution["status"] == "TIMED_OUT"
    assert s.clock.now() - started == pytest.approx(600, abs=5)
    assert s.history(execution["executionArn"])[-1]["type"] == "ExecutionTimedOut"


def test_given_a_state_machine_timeout_when_a_task_outlasts_it_then_the_execution_times_out(local_stack):
    s = local_stack

    def slow(event, context):
        vidpipe.clock.sleep(50)

    install(s, FINALIZE, slow)
    arn = s.built.att(FINALIZE, "Arn")
    machine = add_state_machine(s, "slow-steps", {"TimeoutSeconds": 120, "StartAt": "A", "States": {
        "A": task(arn, Next="B"), "B": task(arn, Next="C"), "C": task(arn, Next="D"), "D": task(arn, End=True)}})

    execution = run_execution(s, machine)

    assert execution["status"] == "TIMED_OUT"
    scheduled = [e for e in s.history(execution["executionArn"]) if e["type"] == "LambdaFunctionScheduled"]
    assert len(scheduled) == 3  # 150 s of work: the fourth step never starts


# ------------------------------------------------------------------ DynamoDB and SQS


def test_given_an_item_over_400_kb_when_written_then_dynamodb_rejects_it(local_stack):
    s = local_stack
    key = {"pk": {"S": "TEST"}, "sk": {"S": "big"}}

    with pytest.raises(ClientError) as rejected:
        s.ddb.put_item(TableName=s.table, Item={**key, "blob": {"S": "x" * 410_000}})
    s.ddb.put_item(TableName=s.table, Item={**key, "blob": {"S": "x" * 390_000}})

    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in rejected.value.response["Error"]["Message"]


def test_given_a_transaction_of_101_items_then_dynamodb_rejects_it_and_100_pass(local_stack):
    s = local_stack

    def puts(n: int) -> list[dict]:
        return [{"Put": {"TableName": s.table, "Item": {"pk": {"S": "TEST"}, "sk": {"S": f"t{i}"}}}}
                for i in range(n)]

    with pytest.raises(ClientError) as rejected:
        s.ddb.transact_write_items(TransactItems=puts(101))
    s.ddb.transact_write_items(TransactItems=puts(100))

    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert marker(s, "t99") is not None


def test_given_a_cancelled_transaction_then_the_items_it_wrote_are_as_before_and_the_others_keep_their_writes(
        local_stack):
    """All or nothing, item by item (the local stack does not copy the whole table to roll back)."""
    s = local_stack

    def item(sk: str, **attrs) -> dict:
        return {"pk": {"S": "TEST"}, "sk": {"S": sk}, **{k: {"N": str(v)} for k, v in attrs.items()}}

    for sk, n in (("updated", 1), ("deleted", 2), ("bystander", 3)):
        s.ddb.put_item(TableName=s.table, Item=item(sk, n=n))
    key = lambda sk: {"pk": {"S": "TEST"}, "sk": {"S": sk}}  # noqa: E731

    with pytest.raises(ClientError) as cancelled:
        s.ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": s.table, "Item": item("created", n=9)}},
            {"Update": {"TableName": s.table, "Key": key("updated"), "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "10"}}}},
            {"Delete": {"TableName": s.table, "Key": key("deleted")}},
            {"ConditionCheck": {"TableName": s.table, "Key": key("bystander"),
                                "ConditionExpression": "n = :wrong", "ExpressionAttributeValues": {":wrong": {"N": "0"}}}},
        ])
    s.ddb.put_item(TableName=s.table, Item=item("later", n=4))  # a write after the rollback stays

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert marker(s, "created") is None
    assert marker(s, "updated")["n"] == {"N": "1"}
    assert marker(s, "deleted")["n"] == {"N": "2"}
    assert marker(s, "bystander")["n"] == {"N": "3"}
    assert marker(s, "later")["n"] == {"N": "4"}


def test_given_a_message_over_the_queues_maximum_size_then_sqs_rejects_it(local_stack):
    s = local_stack
    limit = int(s.sqs.get_queue_attributes(QueueUrl=s.jobs_queue_url, AttributeNames=["MaximumMessageSize"])
                ["Attributes"]["MaximumMessageSize"])

    with pytest.raises(ClientError) as rejected:
        s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody="x" * (limit + 1))
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody="x" * limit)

    assert limit == 1024 * 1024  # SQS's maximum (and default) since August 2025
    assert rejected.value.response["Error"]["Code"] in ("InvalidParameterValue", "InvalidParameterValueException")


# ------------------------------------------------------------------ Step Functions: request sizes


def test_given_an_execution_input_over_256_kib_in_utf8_then_start_execution_is_refused_and_256_kib_is_accepted(
        local_stack):
    s = local_stack
    machine = add_state_machine(s, "input-size", {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    # 2 bytes a character: under 256 Ki characters, over 256 KiB in UTF-8 (what the limit counts).
    over = json.dumps({"s": "é" * (128 * 1024)}, ensure_ascii=False)
    fits = json.dumps({"s": "x" * (256 * 1024 - 9)})
    assert len(over) < 256 * 1024 < len(over.encode()) and len(fits.encode()) == 256 * 1024

    with pytest.raises(ClientError) as refused:
        s.sfn.start_execution(stateMachineArn=machine, name="too-big", input=over)
    started = s.sfn.start_execution(stateMachineArn=machine, name="fits", input=fits)

    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == ("1 validation error detected: Value at 'input' failed to satisfy constraint: "
                                "Member must have length less than or equal to 262144")
    names = [e["name"] for e in s.sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert names == ["fits"] and started["executionArn"].endswith(":fits")


def test_given_a_definition_over_1_mb_then_create_and_update_state_machine_are_refused(local_stack):
    s = local_stack
    small = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    big = json.dumps({"Comment": "x" * (1024 * 1024), **small})
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/vidpipe-local-role"
    machine = add_state_machine(s, "definition-size", small)

    with pytest.raises(ClientError) as refused_create:
        s.sfn.create_state_machine(name="too-big", definition=big, roleArn=role)
    with pytest.raises(ClientError) as refused_update:
        s.sfn.update_state_machine(stateMachineArn=machine, definition=big)

    for refused in (refused_create, refused_update):
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "Member must have length less than or equal to 1048576" in refused.value.response["Error"]["Message"]
    assert "too-big" not in [m["name"] for m in s.sfn.list_state_machines()["stateMachines"]]
    assert json.loads(s.sfn.describe_state_machine(stateMachineArn=machine)["definition"]) == small


def test_given_a_sync_child_input_over_256_kib_then_the_child_is_not_started_and_the_task_fails(local_stack):
    s = local_stack
    child = add_state_machine(s, "child", {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    # The parent's own state is 150 KiB (within the limit); the child's input repeats it twice.
    machine = add_state_machine(s, "parent", {"StartAt": "Start", "States": {
        "Start": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child, "Input": {"a.$": "$.blob", "b.$": "$.blob"}},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Refused"}], "End": True},
        "Refused": {"Type": "Pass", "End": True}}})

    execution = run_execution(s, machine, {"blob": "x" * (150 * 1024)})

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["Error"] == "StepFunctions.ValidationException"
    assert "262144" in json.loads(execution["output"])["Cause"]
    assert s.sfn.list_executions(stateMachineArn=child)["executions"] == []


# ------------------------------------------------------------------ Step Functions: a Task's own timeout


def test_given_a_task_timeout_path_when_the_lambda_outlasts_it_then_the_task_fails_with_states_timeout_on_the_clock(
        local_stack):
    s = local_stack

    def slow(event, context):
        vidpipe.clock.sleep(45)  # within the function's own 60 s
        put_marker(f"ran-on-{event['timeout']}", s.table)
        return {"done": True}

    install(s, FINALIZE, slow)
    arn = s.built.att(FINALIZE, "Arn")
    machine = add_state_machine(s, "task-timeout", {"StartAt": "Call", "States": {
        "Call": task(arn, TimeoutSecondsPath="$.timeout", ResultPath="$.result",
                     Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "TimedOut"}],
                     End=True),
        "TimedOut": {"Type": "Pass", "End": True}}})
    started = time.monotonic()

    cut = run_execution(s, machine, {"timeout": 30}, name="cut")
    within = run_execution(s, machine, {"timeout": 50}, name="within")

    assert time.monotonic() - started < 3  # 45 clock seconds, not real ones
    assert cut["status"] == "SUCCEEDED" and json.loads(cut["output"])["error"]["Error"] == "States.Timeout"
    events = [e["type"] for e in s.history(cut["executionArn"])]
    assert "LambdaFunctionTimedOut" in events and "LambdaFunctionSucceeded" not in events
    assert marker(s, "ran-on-30") is not None  # Step Functions does not stop the function
    assert within["status"] == "SUCCEEDED" and json.loads(within["output"])["result"] == {"done": True}


def test_given_a_task_timeout_with_a_retry_then_each_attempt_times_out_and_the_execution_fails_with_states_timeout(
        local_stack):
    s = local_stack
    attempts: list[int] = []

    def slow(event, context):
        attempts.append(1)
        vidpipe.clock.sleep(20)

    install(s, FINALIZE, slow)
    arn = s.built.att(FINALIZE, "Arn")
    retry = {"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}
    machine = add_state_machine(s, "task-timeout-retry", {"StartAt": "Call", "States": {
        "Call": task(arn, TimeoutSeconds=10, Retry=[retry],
                     Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "NotThis"}], End=True),
        "NotThis": {"Type": "Pass", "End": True}}})

    execution = run_execution(s, machine)

    assert execution["status"] == "FAILED" and execution["error"] == "States.Timeout"
    timed_out = [e for e in s.history(execution["executionArn"]) if e["type"] == "LambdaFunctionTimedOut"]
    assert len(timed_out) == len(attempts) == 1 + retry["MaxAttempts"]


def test_given_a_lambda_invoke_task_hung_in_a_real_wait_then_its_timeout_ends_it_before_the_functions_own(
        make_stack):
    # One real second is worth 200 clock seconds: the task's 20 s are 0.1 s real, the function's 60 s 0.3 s.
    s = make_stack(clock=VirtualClock(real_time_scale=200))
    released = threading.Event()
    install(s, FINALIZE, lambda event, context: released.wait(5))
    arn = s.built.att(FINALIZE, "Arn")
    machine = add_state_machine(s, "task-timeout-hang", {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 20,
                 "Parameters": {"FunctionName": arn, "Payload.$": "$"}, "End": True}}})
    started = time.monotonic()

    execution = run_execution(s, machine)
    took = time.monotonic() - started
    released.set()

    assert execution["status"] == "FAILED" and execution["error"] == "States.Timeout"
    assert took < 2.0
    events = [e["type"] for e in s.history(execution["executionArn"])]
    assert "TaskTimedOut" in events and "TaskFailed" not in events
