"""Completion events and callbacks without AWS: the event's shape and bounds, at-least-once
announcing (a failed PutEvents raises a retryable error), the callback URL's address checks,
the signed POST and its failures, and the receiver example in docs/completion-events.md."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from standardwebhooks import Webhook, WebhookVerificationError

from vidpipe.callbacks import CallbackFailed, backoff_s, callback_url_problem, deliver, signed_headers
from vidpipe.completion import MAX_DETAIL_BYTES, AnnounceDeps, announce, event_detail
from vidpipe.config import Settings
from vidpipe.errors import AwsTransient
from vidpipe.generation.messages import GenerateJob, InvalidJobMessage, parse_job_message

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BUS, QUEUE = "vidpipe-events", "https://sqs.us-east-1.amazonaws.com/123456789012/vidpipe-callbacks"


def job(status="SUCCEEDED", **fields) -> dict:
    return {"job_id": "gen-abc", "kind": "generation", "status": status, "request": {"prompt": "waves"},
            "outputs": {"video": {"s3_uri": "s3://media/outputs/gen-abc/video.mp4"}},
            "spend": {"cost_usd": Decimal("0.24"), "calls": 1}, "updated_at": "2026-11-29T18:00:00.000Z", **fields}


class FakeEvents:
    def __init__(self, failed: int = 0, error: str | None = None):
        self.entries, self.failed, self.error = [], failed, error

    def put_events(self, Entries):  # noqa: N803 (boto3's name)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "PutEvents")
        self.entries += Entries
        if self.failed:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]}


class FakeSqs:
    def __init__(self):
        self.messages = []

    def send_message(self, QueueUrl, MessageBody):  # noqa: N803
        self.messages.append((QueueUrl, json.loads(MessageBody)))


def deps(events=None, sqs=None, **settings) -> AnnounceDeps:
    values = {"event_bus_name": BUS, "callbacks_queue_url": QUEUE, **settings}
    return AnnounceDeps(Settings(**values), events=events or FakeEvents(), sqs=sqs or FakeSqs())


def public(host: str, port: int) -> list[str]:
    return {"hooks.example.com": ["93.184.215.14"], "internal.example.com": ["10.1.2.3"],
            "mixed.example.com": ["93.184.215.14", "192.168.0.9"]}[host]


# ----------------------------------------------------------------------------- the event


def test_given_each_terminal_status_then_the_detail_type_and_a_stable_id_name_it():
    for status, detail_type in [("SUCCEEDED", "Job Succeeded"), ("FAILED", "Job Failed"),
                                ("REJECTED", "Job Rejected"), ("PARTIAL", "Job Partial")]:
        d = deps()
        announce(job(status), deps=d)
        (entry,) = d.events.entries
        assert entry["Source"] == "vidpipe" and entry["DetailType"] == detail_type and entry["EventBusName"] == BUS
        detail = json.loads(entry["Detail"])
        assert detail["id"] == f"gen-abc-{status.lower()}" and detail["status"] == status
        assert detail["spend"] == {"cost_usd": 0.24, "calls": 1}


def test_given_a_failed_job_then_the_detail_carries_its_reason_and_error_name():
    detail = event_detail(job("FAILED", error={"error": "ProviderError", "reason": "content policy violation"}))

    assert detail["reason"] == "content policy violation" and detail["error"] == "ProviderError"


def test_given_huge_outputs_then_the_detail_stays_bounded_and_points_at_the_record():
    detail = event_detail(job(outputs={f"frame{i}": "s3://media/" + "x" * 1000 for i in range(500)}))

    assert len(json.dumps(detail).encode()) <= MAX_DETAIL_BYTES
    assert "gen-abc" in detail["outputs"]["omitted"]


def test_given_a_job_that_is_not_terminal_or_no_bus_then_nothing_is_published():
    d = deps()
    assert announce(job("RUNNING"), deps=d) is None
    unconfigured = deps(event_bus_name="")
    assert announce(job(), deps=unconfigured) is None
    assert d.events.entries == [] and unconfigured.events.entries == []


def test_given_a_failed_entry_or_an_aws_error_then_announce_raises_a_retryable_error():
    with pytest.raises(AwsTransient, match="InternalFailure"):
        announce(job(), deps=deps(events=FakeEvents(failed=1)))
    with pytest.raises(AwsTransient, match="ThrottlingException"):
        announce(job(), deps=deps(events=FakeEvents(error="ThrottlingException")))


def test_given_an_announcement_repeated_then_both_carry_the_same_id_and_webhook_id():
    d = deps()
    request = {"prompt": "waves", "callback_url": "https://hooks.example.com/v"}

    announce(job(request=request), deps=d)
    announce(job(request=request), deps=d)

    ids = {json.loads(e["Detail"])["id"] for e in d.events.entries}
    assert len(d.events.entries) == 2 and ids == {"gen-abc-succeeded"}
    assert [m["webhook_id"] for _, m in d.sqs.messages] == ["gen-abc-succeeded"] * 2
    assert {m["url"] for _, m in d.sqs.messages} == {"https://hooks.example.com/v"}


def test_given_no_callback_url_then_no_callback_is_queued():
    d = deps()
    announce(job(), deps=d)
    assert d.sqs.messages == []


# ----------------------------------------------------------------------------- the URL at intake


@pytest.mark.parametrize("url, why", [
    ("https://10.0.0.1/h", "10.0.0.1 is a private address"),
    ("https://169.254.169.254/h", "the instance metadata service"),
    ("https://[fd00:ec2::254]/h", "the instance metadata service"),
    ("https://127.0.0.2/h", "a loopback address"),
    ("https://internal.example.com/h", "10.1.2.3 is a private address"),
    ("https://mixed.example.com/h", "192.168.0.9 is a private address"),
    ("http://hooks.example.com/h", "only https callback URLs are allowed"),
    ("ftp://hooks.example.com/h", "only https"),
    ("https://user:pw@hooks.example.com/h", "credentials"),
    ("https://hooks.example.com/" + "a" * 2100, "longer than 2048"),
])
def test_given_a_callback_url_that_is_not_public_https_then_it_is_refused_naming_why(url, why):
    problem = callback_url_problem(url, Settings(), public)

    assert problem is not None and why in problem


def test_given_public_https_or_an_allowed_local_host_then_the_callback_url_is_accepted():
    local = Settings(download_allow_hosts="127.0.0.1")

    assert callback_url_problem("https://hooks.example.com/v?x=1", Settings(), public) is None
    assert callback_url_problem("http://127.0.0.1:8080/hook", local, public) is None
    assert "metadata" in callback_url_problem("https://169.254.169.254/", Settings(download_allow_hosts="169.254.169.254"),
                                              public)


def test_given_a_job_message_with_a_private_callback_url_then_parsing_rejects_it_in_one_line():
    body = json.dumps({"type": "generate", "prompt": "waves", "provider": "generic", "model": "vidgen-1",
                       "callback_url": "https://10.0.0.1/hook"})

    with pytest.raises(InvalidJobMessage) as caught:
        parse_job_message(body)

    assert caught.value.messages == ["callback_url: refused 10.0.0.1: 10.0.0.1 is a private address"]


def test_given_a_public_callback_url_then_it_is_part_of_the_request():
    message = GenerateJob.model_validate(
        {"type": "generate", "prompt": "waves", "provider": "generic", "model": "vidgen-1",
         "callback_url": "https://hooks.example.com/v"}, context={"settings": Settings(), "resolver": public})

    assert message.model_dump(mode="json")["callback_url"] == "https://hooks.example.com/v"


# ----------------------------------------------------------------------------- delivery


def message(url="https://hooks.example.com/v") -> dict:
    return {"url": url, "webhook_id": "gen-abc-succeeded", "detail": event_detail(job())}


def transport(status: int, seen: list):
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers={"location": "https://elsewhere.example.com/"} if status == 302 else {})
    return httpx.Client(transport=httpx.MockTransport(handle))


def test_given_a_receiver_answering_204_then_one_signed_post_reaches_the_checked_address():
    seen = []

    status = deliver(message(), secret=SECRET, settings=Settings(), client=transport(204, seen), resolver=public)

    (request,) = seen
    assert status == 204 and request.method == "POST"
    assert request.url.host == "93.184.215.14" and request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    detail = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert detail == json.loads(json.dumps(event_detail(job())))
    assert request.headers["webhook-id"] == "gen-abc-succeeded"


@pytest.mark.parametrize("status", [500, 503, 404, 302])
def test_given_a_receiver_that_does_not_answer_2xx_then_the_delivery_fails_to_be_retried(status):
    seen = []
    with pytest.raises(CallbackFailed, match=f"answered {status}") as caught:
        deliver(message(), secret=SECRET, settings=Settings(), client=transport(status, seen), resolver=public)
    assert not caught.value.permanent and len(seen) == 1  # no redirect followed


def test_given_a_receiver_that_times_out_then_the_delivery_fails_to_be_retried():
    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(CallbackFailed, match="timed out") as caught:
        deliver(message(), secret=SECRET, settings=Settings(), resolver=public,
                client=httpx.Client(transport=httpx.MockTransport(slow)))
    assert not caught.value.permanent


def test_given_an_address_that_turned_private_or_no_secret_then_the_failure_is_permanent():
    seen = []
    with pytest.raises(CallbackFailed, match="private") as refused:
        deliver(message("https://internal.example.com/v"), secret=SECRET, settings=Settings(),
                client=transport(200, seen), resolver=public)
    with pytest.raises(CallbackFailed, match="callback_signing_secret") as unsigned:
        deliver(message(), secret="", settings=Settings(), client=transport(200, seen), resolver=public)
    assert refused.value.permanent and unsigned.value.permanent and seen == []


def test_given_failed_attempts_then_the_backoff_doubles_up_to_a_cap():
    assert [backoff_s(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]


# ----------------------------------------------------------------------------- the documented receiver


def documented_receiver() -> dict:
    text = (ROOT / "docs" / "completion-events.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    namespace = {"__name__": "documented_receiver"}
    exec(compile(code, "docs/completion-events.md", "exec"), namespace)  # noqa: S102 (our own docs)
    return namespace


def test_given_the_documented_receiver_then_it_verifies_a_vidpipe_request_once_and_refuses_a_forgery():
    receiver = documented_receiver()
    body = json.dumps(event_detail(job()), separators=(",", ":"))
    headers = signed_headers(SECRET, "gen-abc-succeeded", body)

    first = receiver["verify_callback"](body.encode(), headers, SECRET)
    repeat = receiver["verify_callback"](body.encode(), headers, SECRET)

    assert first["job_id"] == "gen-abc" and first["status"] == "SUCCEEDED" and repeat is None
    with pytest.raises(WebhookVerificationError):
        receiver["verify_callback"](body.replace("SUCCEEDED", "FAILED").encode(),
                                    {**headers, "webhook-id": "other"}, SECRET)


# ----------------------------------------------------------------------------- rejections at intake


def test_given_a_rejected_message_then_it_is_announced_and_a_failed_announcement_retries_the_record(mocked_aws):
    import boto3

    from vidpipe.jobs import JobStore
    from vidpipe.start_jobs import SourceQueue, StartJobs

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(TableName="jobs", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    announced, failing = [], [True]

    def announce_once_failing(record):
        if failing.pop() if failing else False:
            raise AwsTransient("PutEvents refused the event: InternalFailure")
        announced.append(record)

    arn = "arn:aws:sqs:us-east-1:123456789012:jobs"
    svc = StartJobs(JobStore("jobs", client=ddb), None, None, "a", "g", "media", sqs=sqs,
                    queues={arn: SourceQueue(dlq)}, announce=announce_once_failing)

    with pytest.raises(AwsTransient):  # SQS offers the record again; it is not dead-lettered
        svc.handle_record('{"type": "generate"}', "m1", arn)
    (again,) = svc.handle_record('{"type": "generate"}', "m1", arn)

    assert again.duplicate
    (record,) = announced
    assert record["status"] == "REJECTED" and record["job_id"] == again.job_id and "prompt" in record["error"]["reason"]
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []


# ----------------------------------------------------------------------------- finalize


def test_given_finalize_runs_again_after_the_job_ended_then_the_stored_state_is_announced_again():
    from vidpipe.finalize import FinalizeInput, finalize

    stored = job("SUCCEEDED")

    class Jobs:
        def update(self, job_id, status=None, **fields):
            return False  # already terminal: the first run updated it, then its announcement failed

        def get(self, job_id):
            return stored

    class Accounting:
        def settle(self, job_id, reservation_id):
            return {"cost_usd": Decimal("0.24")}

    d = deps()
    d.jobs, d.accounting = Jobs(), Accounting()

    finalize(FinalizeInput(job_id="gen-abc", outcome="FAILED", error={"Error": "States.Timeout"}), d)

    (entry,) = d.events.entries
    assert entry["DetailType"] == "Job Succeeded" and json.loads(entry["Detail"])["id"] == "gen-abc-succeeded"


def test_given_an_analyze_message_with_a_callback_url_then_the_job_record_keeps_it_for_the_announcement(mocked_aws):
    import boto3

    from vidpipe.jobs import JobStore
    from vidpipe.start_jobs import StartJobs

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(TableName="jobs", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    analysis = sfn.create_state_machine(name="analysis", definition=definition,
                                        roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    svc = StartJobs(JobStore("jobs", client=ddb), sfn, None, analysis, "g", "media")
    body = json.dumps({"type": "analyze", "s3_uri": "s3://media/uploads/a.mp4",
                       "callback_url": "http://127.0.0.1:8080/hook"})

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOWNLOAD_ALLOW_HOSTS", "127.0.0.1")
        from vidpipe.config import get_settings
        get_settings.cache_clear()
        try:
            (started,) = svc.handle_body(body, "m1")
        finally:
            get_settings.cache_clear()

    record = svc.jobs.get(started.job_id)
    (execution,) = sfn.list_executions(stateMachineArn=analysis)["executions"]
    execution_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert record["request"]["callback_url"] == "http://127.0.0.1:8080/hook"
    assert "callback_url" not in execution_input and execution_input["key"] == "uploads/a.mp4"


# ----------------------------------------------------------------------------- the local stack's template conditions


def test_given_an_existing_bus_name_then_the_local_resolver_takes_the_if_branch_and_skips_the_conditional_bus():
    from vidpipe_local.stack.resources import name_resources
    from vidpipe_local.stack.template import Resolver, load_template

    template = load_template(ROOT / "template.yaml")
    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    own, existing = (Resolver("st", {**defaults, "ExistingEventBusName": name}) for name in ("", "team-bus"))
    for resolver in (own, existing):
        name_resources(template, resolver)
    bus_env = template["Globals"]["Function"]["Environment"]["Variables"]["EVENT_BUS_NAME"]

    assert own.resolve(bus_env) == "st-events" and existing.resolve(bus_env) == "team-bus"
    assert "CompletionEventBus" in own.refs and "CompletionEventBus" not in existing.refs
    assert "AlarmEmailSubscription" not in own.refs  # HasAlarmEmail is false without an AlarmEmail
