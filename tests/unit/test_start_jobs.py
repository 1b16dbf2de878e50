"""start_jobs: deterministic job ids, rejected messages recorded with bounded reasons, duplicates start
nothing, and no message vanishes: every one ends as a job, a REJECTED record or a dead letter with a reason."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import vidpipe.start_jobs as start_jobs_module
from vidpipe.jobs import MAX_REASON_CHARS, JobStore
from vidpipe.start_jobs import SourceQueue, StartJobs, upload_job_id

BUCKET = "media"
INGEST_ARN = "arn:aws:sqs:us-east-1:123456789012:ingest"
JOBS_ARN = "arn:aws:sqs:us-east-1:123456789012:jobs"


@pytest.fixture
def service():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName="jobs", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket="someone-elses")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        role = "arn:aws:iam::123456789012:role/r"
        arns = [sfn.create_state_machine(name=n, definition=definition, roleArn=role)["stateMachineArn"]
                for n in ("analysis", "generation")]
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlqs = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("ingest-dlq", "jobs-dlq")}
        queues = {INGEST_ARN: SourceQueue(dlqs["ingest-dlq"], ingest=True), JOBS_ARN: SourceQueue(dlqs["jobs-dlq"])}
        svc = StartJobs(JobStore("jobs", client=ddb), sfn, s3, arns[0], arns[1], BUCKET, sqs=sqs, queues=queues)
        svc.dlqs = dlqs
        yield svc, s3, sfn, arns


def s3_event(key: str, etag: str, bucket: str = BUCKET, event: str = "ObjectCreated:Put") -> dict:
    return {"eventName": event, "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": etag}}}


def notification(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def executions(sfn, arn) -> list:
    return sfn.list_executions(stateMachineArn=arn)["executions"]


def dead_letters(svc, name: str) -> list[dict]:
    return svc.sqs.receive_message(QueueUrl=svc.dlqs[name], MaxNumberOfMessages=10,
                                   MessageAttributeNames=["All"]).get("Messages", [])


def rejected_records(svc, started) -> list[dict]:
    jobs = [svc.jobs.get(s.job_id) for s in started]
    assert jobs and all(job["status"] == "REJECTED" for job in jobs), jobs
    return jobs


def test_given_an_upload_notification_with_encoded_key_then_one_analysis_job_on_the_decoded_key(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/a b+c.mp4", Body=b"x",
                        Metadata={"vidpipe-options": json.dumps({"sampling": "keyframes"})})
    body = notification(s3_event("uploads/a+b%2Bc.mp4", put["ETag"].strip('"')))
    started = svc.handle_record(body, "m1", INGEST_ARN)
    assert [s.job_id for s in started] == [upload_job_id(BUCKET, "uploads/a b+c.mp4", put["ETag"],
                                                         {"sampling": "keyframes"})]
    job = svc.jobs.get(started[0].job_id)
    assert job["status"] == "RUNNING" and job["request"]["options"] == {"sampling": "keyframes"}
    again = svc.handle_record(body, "m2", INGEST_ARN)
    assert again[0].duplicate and len(executions(sfn, analysis)) == 1


def test_given_bad_options_metadata_then_the_job_is_rejected_with_the_field_named(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/v.mp4", Body=b"x",
                        Metadata={"vidpipe-options": json.dumps({"sampling": "every-frame"})})
    started = svc.handle_record(notification(s3_event("uploads/v.mp4", put["ETag"])), "m1", INGEST_ARN)
    job = svc.jobs.get(started[0].job_id)
    assert job["status"] == "REJECTED" and job["error"]["reason"].startswith("options.sampling: Input should be")
    assert executions(sfn, analysis) == []


@pytest.mark.parametrize(("options", "expected"), [
    ('{"budget_usd": 1e400}', "options.budget_usd: Input should be a finite number"),
    ('{"budget_usd": 1e30}', "options.budget_usd: Input should be less than or equal to 1000000"),
    ('{"budget_usd": "1e-10"}', "options.budget_usd: 1E-10 USD rounds to 0.0000; the smallest amount is 0.0001"),
    ('{"fps": true}', "options.fps: must be a number, not true"),
    ('{"fsp": 2}', "options.fsp: unknown field"),
    ('{"fps": ', "vidpipe-options metadata is not valid JSON (EOF while parsing a value at line 1 column 8)"),
])
def test_given_upload_options_that_cannot_succeed_then_rejected_with_a_readable_reason(service, options, expected):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/o.mp4", Body=b"x", Metadata={"vidpipe-options": options})
    started = svc.handle_record(notification(s3_event("uploads/o.mp4", put["ETag"])), "m1", INGEST_ARN)
    assert rejected_records(svc, started)[0]["error"]["reason"] == expected
    assert executions(sfn, analysis) == []


def test_given_a_malformed_message_then_a_rejected_job_explains_it_and_nothing_starts(service):
    svc, s3, sfn, (_, generation) = service
    started = svc.handle_record("{not json", "m1", JOBS_ARN)
    assert "JSON" in rejected_records(svc, started)[0]["error"]["reason"]
    assert executions(sfn, generation) == []


BIG = "x" * 250_000


@pytest.mark.parametrize(("body", "expected"), [
    ({"type": "generate", "prompt": "waves", "max_cost_usd": 1e24},
     "max_cost_usd: Input should be less than or equal to 1000000"),
    ({"type": "generate", "prompt": "waves", "max_cost_usd": "1" + "0" * 30}, "max_cost_usd: Input should be less"),
    ({"type": "generate", "prompt": "waves", "max_cost_usd": "1e-10"}, "max_cost_usd: 1E-10 USD rounds to 0.0000"),
    ({"type": "generate", "prompt": "waves", "duration_s": 0.001}, "duration_s: 0.001 s at 24 fps is fewer than 2"),
    ({"type": "generate", "prompt": "waves", "fps": True}, "fps: must be a number, not true"),
    ({"type": "generate", "prompt": "waves\x07"}, "prompt: control character U+0007 at position 5"),
    ({"type": "generate", "prompt": "waves", "model": BIG}, "model: String should have at most 128 characters"),
    ({"type": "generate", "prompt": "waves", "provider": BIG}, "provider: String should have at most 128"),
    ({"type": BIG, "prompt": "waves"}, "type: unknown message type 'xxxxx"),
    ({"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4", "budget_usd": 1e400}, "budget_usd: Input should be a"),
    ({"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4", "fps": True}, "fps: must be a number, not true"),
    ({"type": "analyze", "s3_uri": "s3://someone-elses/uploads/x.mp4"},
     "s3_uri: bucket 'someone-elses' is not the media bucket media"),
    ({"type": "analyze", "s3_uri": "s3://media/outputs/x.mp4"}, "s3_uri: key 'outputs/x.mp4' is not under uploads/"),
    ({"Records": []}, "Records: an S3 notification needs at least one record"),
    ({"Records": [{"s3": 1}]}, "Records.0.eventName: required; Records.0.s3: must be a JSON object"),
    ({"Records": [s3_event("uploads/gone.mp4", "e", event="ObjectRemoved:Delete")]},
     "Records.0.eventName: only ObjectCreated events start an analysis, not 'ObjectRemoved:Delete'"),
    ({"Records": [s3_event("uploads/x.mp4", "e", bucket="someone-elses")]},
     "Records.0.s3: bucket 'someone-elses' is not the media bucket media"),
    ({"Records": [s3_event("private/x.mp4", "e")]}, "Records.0.s3: key 'private/x.mp4' is not under uploads/"),
    ({"Event": "s3:TestEvent", "Bucket": BUCKET}, "Event: s3:TestEvent is sent by S3 to the ingest queue"),
    ("[" * 100_000 + "]" * 100_000, "message body is not valid JSON (recursion limit exceeded"),
    ('{"type": "generate", "prompt": "waves", "priority": 1' + "0" * 5000 + "}", "message body is not valid JSON"),
])
def test_given_a_message_that_cannot_succeed_on_the_jobs_queue_then_rejected_with_a_bounded_reason(
        service, body, expected):
    svc, s3, sfn, arns = service
    text = body if isinstance(body, str) else json.dumps(body)

    started = svc.handle_record(text, "m1", JOBS_ARN)

    [job] = rejected_records(svc, started)
    assert job["error"]["reason"].startswith(expected)
    assert len(job["error"]["reason"]) <= MAX_REASON_CHARS
    assert len(json.dumps(job, default=str)) < 4_000  # the sender's input is quoted, cut, not stored whole
    assert all(executions(sfn, arn) == [] for arn in arns) and dead_letters(svc, "jobs-dlq") == []


def test_given_thousands_of_unknown_fields_then_the_record_stays_small_and_says_how_many_more(service):
    svc, *_ = service
    body = json.dumps({"type": "generate", "prompt": "waves", **{f"f{i}" * 50: 1 for i in range(5000)}})
    [job] = rejected_records(svc, svc.handle_record(body, "m1", JOBS_ARN))
    assert job["error"]["details"][-1] == "… and 4980 more"
    assert len(json.dumps(job, default=str)) < 8_000


def test_given_a_notification_with_a_good_and_a_foreign_record_then_one_starts_and_one_is_rejected(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/ok.mp4", Body=b"x")
    started = svc.handle_record(notification(s3_event("uploads/ok.mp4", put["ETag"]),
                                             s3_event("uploads/ok.mp4", "e", bucket="someone-elses")), "m1", INGEST_ARN)
    assert [svc.jobs.get(s.job_id)["status"] for s in started] == ["RUNNING", "REJECTED"]
    assert len(executions(sfn, analysis)) == 1


def test_given_the_s3_test_event_on_the_ingest_queue_then_it_is_ignored_and_counted(service, monkeypatch):
    svc, *_ = service
    metrics = []
    monkeypatch.setattr(start_jobs_module, "emit_metric", lambda name, *args, **kw: metrics.append(name))
    assert svc.handle_record(json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET}), "m1", INGEST_ARN) == []
    assert metrics == ["S3TestEventIgnored"]


def test_given_the_same_generate_message_twice_then_one_execution(service):
    svc, s3, sfn, (_, generation) = service
    body = json.dumps({"type": "generate", "prompt": "a red ball bouncing", "mode": "slow_motion"})
    first, second = svc.handle_record(body, "m1", JOBS_ARN)[0], svc.handle_record(body, "m2", JOBS_ARN)[0]
    assert first.job_id == second.job_id and second.duplicate and not first.duplicate
    assert len(executions(sfn, generation)) == 1


def test_given_a_reused_client_token_with_other_content_then_rejected_naming_the_job_that_owns_it(service):
    svc, s3, sfn, (_, generation) = service
    first = svc.handle_record(json.dumps({"type": "generate", "prompt": "a red ball", "client_token": "t-1"}),
                              "m1", JOBS_ARN)[0]
    same = svc.handle_record(json.dumps({"client_token": "t-1", "prompt": "a red ball", "type": "generate",
                                         "fps": 24}), "m2", JOBS_ARN)[0]
    other = svc.handle_record(json.dumps({"type": "generate", "prompt": "a blue ball", "client_token": "t-1"}),
                              "m3", JOBS_ARN)

    assert same.job_id == first.job_id and same.duplicate  # same content, spelled differently
    [job] = rejected_records(svc, other)
    assert job["error"]["reason"] == (f"client_token: 't-1' already names job {first.job_id}, whose content "
                                      "differs; a new job needs a new token")
    assert svc.jobs.get(first.job_id)["request"]["prompt"] == "a red ball"
    assert len(executions(sfn, generation)) == 1


def test_given_a_token_whose_first_message_was_rejected_then_other_content_under_it_is_rejected_too(service):
    svc, s3, sfn, (analysis, _) = service
    foreign = svc.handle_record(json.dumps({"type": "analyze", "s3_uri": "s3://someone-elses/uploads/a.mp4",
                                            "client_token": "t-2"}), "m1", JOBS_ARN)[0]
    s3.put_object(Bucket=BUCKET, Key="uploads/a.mp4", Body=b"x")
    second = svc.handle_record(json.dumps({"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4",
                                           "client_token": "t-2"}), "m2", JOBS_ARN)
    [job] = rejected_records(svc, second)
    assert job["job_id"] != foreign.job_id and foreign.job_id in job["error"]["reason"]
    assert executions(sfn, analysis) == []


def test_given_an_upload_asking_for_an_unpriced_model_then_rejected_before_any_execution(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/m.mp4", Body=b"x",
                        Metadata={"vidpipe-options": json.dumps({"model": "free-lunch-1"})})
    started = svc.handle_record(notification(s3_event("uploads/m.mp4", put["ETag"])), "m1", INGEST_ARN)
    assert "no price for chat model 'free-lunch-1'" in rejected_records(svc, started)[0]["error"]["reason"]
    assert executions(sfn, analysis) == []


def test_given_a_message_at_fault_that_cannot_be_recorded_then_it_goes_to_its_dlq_with_the_reason(
        service, monkeypatch):
    svc, *_ = service

    def too_large(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ValidationException",
                                     "Message": "Item size has exceeded the maximum allowed size"}}, "PutItem")

    monkeypatch.setattr(svc.jobs, "create", too_large)
    assert svc.handle_record("{not json", "m-7", JOBS_ARN) == []  # reported as handled: not retried

    [dead] = dead_letters(svc, "jobs-dlq")
    assert dead["Body"] == "{not json"
    assert dead["MessageAttributes"]["reason"]["StringValue"] == (
        "ClientError: An error occurred (ValidationException) when calling the PutItem operation: "
        "Item size has exceeded the maximum allowed size")
    assert dead["MessageAttributes"]["source_message_id"]["StringValue"] == "m-7"
    assert dead_letters(svc, "ingest-dlq") == []


def test_given_a_transient_aws_failure_then_the_record_raises_for_a_retry_and_is_not_dead_lettered(
        service, monkeypatch):
    svc, *_ = service

    def unavailable(**kwargs):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "StartExecution")

    monkeypatch.setattr(svc.sfn, "start_execution", unavailable)
    with pytest.raises(ClientError):
        svc.handle_record(json.dumps({"type": "generate", "prompt": "waves"}), "m1", JOBS_ARN)
    assert dead_letters(svc, "jobs-dlq") == []
