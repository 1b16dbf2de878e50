"""start_jobs: deterministic job ids, rejected messages recorded with their reasons, duplicates start nothing."""

import json

import boto3
import pytest
from moto import mock_aws

from vidpipe.jobs import JobStore
from vidpipe.start_jobs import StartJobs, upload_job_id

BUCKET = "media"


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
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        role = "arn:aws:iam::123456789012:role/r"
        arns = [sfn.create_state_machine(name=n, definition=definition, roleArn=role)["stateMachineArn"]
                for n in ("analysis", "generation")]
        yield StartJobs(JobStore("jobs", client=ddb), sfn, s3, arns[0], arns[1], BUCKET), s3, sfn, arns


def s3_event(key: str, etag: str) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": etag}}}]})


def test_given_an_upload_notification_with_encoded_key_then_one_analysis_job_on_the_decoded_key(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/a b+c.mp4", Body=b"x",
                        Metadata={"vidpipe-options": json.dumps({"sampling": "keyframes"})})
    started = svc.handle_body(s3_event("uploads/a+b%2Bc.mp4", put["ETag"].strip('"')), "m1")
    assert [s.job_id for s in started] == [upload_job_id(BUCKET, "uploads/a b+c.mp4", put["ETag"])]
    job = svc.jobs.get(started[0].job_id)
    assert job["status"] == "RUNNING" and job["request"]["options"] == {"sampling": "keyframes"}
    again = svc.handle_body(s3_event("uploads/a+b%2Bc.mp4", put["ETag"].strip('"')), "m2")
    assert again[0].duplicate and len(sfn.list_executions(stateMachineArn=analysis)["executions"]) == 1


def test_given_bad_options_metadata_then_the_job_is_rejected_with_the_field_named(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/v.mp4", Body=b"x",
                        Metadata={"vidpipe-options": json.dumps({"sampling": "every-frame"})})
    started = svc.handle_body(s3_event("uploads/v.mp4", put["ETag"]), "m1")
    job = svc.jobs.get(started[0].job_id)
    assert job["status"] == "REJECTED" and "sampling" in job["error"]["reason"]
    assert sfn.list_executions(stateMachineArn=analysis)["executions"] == []


def test_given_a_malformed_message_then_a_rejected_job_explains_it_and_nothing_starts(service):
    svc, s3, sfn, (_, generation) = service
    started = svc.handle_body("{not json", "m1")
    job = svc.jobs.get(started[0].job_id)
    assert job["status"] == "REJECTED" and "JSON" in job["error"]["reason"]
    assert sfn.list_executions(stateMachineArn=generation)["executions"] == []


def test_given_an_analyze_message_outside_the_media_bucket_then_rejected(service):
    svc, *_ = service
    started = svc.handle_body(json.dumps({"type": "analyze", "s3_uri": "s3://someone-elses/x.mp4"}), "m1")
    assert "media bucket" in svc.jobs.get(started[0].job_id)["error"]["reason"]


def test_given_the_same_generate_message_twice_then_one_execution(service):
    svc, s3, sfn, (_, generation) = service
    body = json.dumps({"type": "generate", "prompt": "a red ball bouncing", "mode": "slow_motion"})
    first, second = svc.handle_body(body, "m1")[0], svc.handle_body(body, "m2")[0]
    assert first.job_id == second.job_id and second.duplicate and not first.duplicate
    assert len(sfn.list_executions(stateMachineArn=generation)["executions"]) == 1


def test_given_the_s3_test_event_then_nothing_happens(service):
    svc, *_ = service
    assert svc.handle_body(json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET}), "m1") == []


def test_given_an_upload_asking_for_an_unpriced_model_then_rejected_before_any_execution(service):
    svc, s3, sfn, (analysis, _) = service
    put = s3.put_object(Bucket=BUCKET, Key="uploads/m.mp4", Body=b"x",
                        Metadata={"vidpipe-options": json.dumps({"model": "free-lunch-1"})})
    job = svc.jobs.get(svc.handle_body(s3_event("uploads/m.mp4", put["ETag"]), "m1")[0].job_id)
    assert job["status"] == "REJECTED" and "no price for chat model 'free-lunch-1'" in job["error"]["reason"]
    assert sfn.list_executions(stateMachineArn=analysis)["executions"] == []
