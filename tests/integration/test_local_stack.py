"""The foundation: the local stack is built from template.yaml and the real
event flow S3 → SQS → Lambda → Step Functions → DynamoDB runs on it."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from vidpipe.jobs import JobStore
from vidpipe_local.stack.stack import REPO_ROOT

pytestmark = pytest.mark.integration


def test_given_template_when_stack_starts_then_every_resource_exists_under_its_template_name(local_stack):
    s = local_stack
    assert s.bucket == "vidpipe-local-media-123456789012-us-east-1"
    s.s3.head_bucket(Bucket=s.bucket)
    queues = {u.rsplit("/", 1)[1] for u in s.sqs.list_queues()["QueueUrls"]}
    assert queues == {"vidpipe-local-ingest", "vidpipe-local-ingest-dlq", "vidpipe-local-jobs", "vidpipe-local-jobs-dlq",
                      "vidpipe-local-callbacks", "vidpipe-local-callbacks-dlq"}
    redrive = json.loads(s.sqs.get_queue_attributes(QueueUrl=s.jobs_queue_url, AttributeNames=["RedrivePolicy"])
                         ["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":vidpipe-local-jobs-dlq") and int(redrive["maxReceiveCount"]) == 5
    assert set(s.ddb.list_tables()["TableNames"]) == {"vidpipe-local-jobs", "vidpipe-local-idempotency"}
    machines = {m["name"] for m in s.sfn.list_state_machines()["stateMachines"]}
    assert machines == {"vidpipe-local-analysis", "vidpipe-local-generation", "vidpipe-local-production"}
    functions = {f["FunctionName"] for f in s.clients["lambda"].list_functions()["Functions"]}
    assert "vidpipe-local-StartJobsFunction" in functions and "vidpipe-local-FinalizeJobFunction" in functions
    notification = s.s3.get_bucket_notification_configuration(Bucket=s.bucket)["QueueConfigurations"][0]
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_given_an_upload_when_queues_drain_then_start_jobs_starts_an_analysis_execution_that_moto_runs(local_stack):
    s = local_stack
    key = "uploads/holiday clip+1 é.mp4"
    s.s3.put_object(Bucket=s.bucket, Key=key, Body=b"definitely not a video")
    assert s.drain() >= 1

    executions = s.executions(s.analysis_arn)
    assert len(executions) == 1
    job_id = executions[0]["name"]
    record = JobStore(s.table, client=s.ddb).get(job_id)
    assert record["request"]["key"] == key  # URL-decoded: space, '+' and unicode survive

    s.wait_for_execution(executions[0]["executionArn"])
    entered = [e for e in s.history(executions[0]["executionArn"]) if e["type"].endswith("StateEntered")]
    assert entered, "the ASL was not executed"
    assert entered[0]["stateEnteredEventDetails"]["name"] in json.loads(
        (REPO_ROOT / "statemachines/analysis.asl.json").read_text())["States"]


def test_given_the_same_notification_twice_when_delivered_then_one_execution(local_stack):
    s = local_stack
    s.s3.put_object(Bucket=s.bucket, Key="uploads/dup.mp4", Body=b"x")
    message = s.sqs.receive_message(QueueUrl=s.ingest_queue_url, MaxNumberOfMessages=10)["Messages"]
    bodies = [m["Body"] for m in message if "Records" in json.loads(m["Body"])]
    for m in message:
        s.sqs.change_message_visibility(QueueUrl=s.ingest_queue_url, ReceiptHandle=m["ReceiptHandle"],
                                        VisibilityTimeout=0)
    s.sqs.send_message(QueueUrl=s.ingest_queue_url, MessageBody=bodies[0])  # S3 delivers at least once
    s.drain()
    assert len(s.executions(s.analysis_arn)) == 1


def test_given_a_batch_with_a_failing_record_then_only_it_is_retried_and_lands_in_the_dlq(local_stack, monkeypatch):
    from vidpipe.start_jobs import StartJobs

    s = local_stack
    original = StartJobs._start

    def flaky_start(self, arn, name, execution_input):
        if "poison" in json.dumps(execution_input):
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "StartExecution")
        return original(self, arn, name, execution_input)

    monkeypatch.setattr(StartJobs, "_start", flaky_start)
    s.s3.put_object(Bucket=s.bucket, Key="uploads/poison.mp4", Body=b"x")
    s.s3.put_object(Bucket=s.bucket, Key="uploads/fine.mp4", Body=b"x")
    s.drain()

    executions = s.executions(s.analysis_arn)
    assert len(executions) == 1
    assert JobStore(s.table, client=s.ddb).get(executions[0]["name"])["request"]["key"] == "uploads/fine.mp4"
    dlq = s.built.ref("IngestDeadLetterQueue")
    dead = s.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert len(dead) == 1 and "poison" in dead[0]["Body"]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= 5


def test_given_renamed_queue_and_table_in_the_template_then_the_stack_follows_without_python_changes(
        make_stack, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    for folder in ("functions", "statemachines"):
        (root / folder).symlink_to(REPO_ROOT / folder)
    template = (REPO_ROOT / "template.yaml").read_text()
    template = template.replace("QueueName: !Sub ${AWS::StackName}-jobs\n", "QueueName: !Sub ${AWS::StackName}-work-orders\n")
    template = template.replace("TableName: !Sub ${AWS::StackName}-jobs\n", "TableName: !Sub ${AWS::StackName}-ledger\n")
    (root / "template.yaml").write_text(template)

    s = make_stack(root=root)
    assert s.jobs_queue_url.endswith("/vidpipe-local-work-orders")
    assert s.table == "vidpipe-local-ledger"
    env = s.built.function_env["StartJobsFunction"]
    assert env["TABLE_NAME"] == "vidpipe-local-ledger"


def test_given_timeouts_and_memory_in_globals_and_per_function_then_each_function_runs_with_its_own(local_stack):
    s = local_stack
    seen = {}

    def report(event, context):
        seen[context.function_name] = (context.memory_limit_in_mb, context.get_remaining_time_in_millis())
        return {}

    for logical_id in ("ProbeVideoFunction", "FinalizeJobFunction"):
        s.built.functions[logical_id]._callable = report
        s.invoke(logical_id, {})
        config = s.clients["lambda"].get_function_configuration(FunctionName=s.built.ref(logical_id))
        assert (config["MemorySize"], config["Timeout"] * 1000) == pytest.approx(seen[s.built.ref(logical_id)],
                                                                                 abs=1000)

    assert seen["vidpipe-local-ProbeVideoFunction"][0] == 1024  # its own MemorySize
    assert seen["vidpipe-local-FinalizeJobFunction"][0] == 256
    assert seen["vidpipe-local-ProbeVideoFunction"][1] == pytest.approx(120_000, abs=1000)  # its own Timeout
    assert seen["vidpipe-local-FinalizeJobFunction"][1] == pytest.approx(60_000, abs=1000)  # Globals' Timeout


def test_given_the_template_machines_validated_once_when_a_broken_definition_is_created_then_it_is_still_refused(
        local_stack):
    s = local_stack
    role = "arn:aws:iam::123456789012:role/any"
    broken = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Bogus", "End": True}}})

    with pytest.raises(ClientError, match="ASLParserException"):  # moto's InvalidDefinition
        s.sfn.create_state_machine(name="broken", definition=broken, roleArn=role)
    valid = s.sfn.describe_state_machine(stateMachineArn=s.generation_arn)["definition"]
    assert s.sfn.create_state_machine(name="copy", definition=valid, roleArn=role)["stateMachineArn"]
