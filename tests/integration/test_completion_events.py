"""Completion events out and callbacks on the local stack (issue 12 §4).

Every terminal state publishes exactly one EventBridge event, observed the way a
consumer would: a rule on the completion bus with an SQS target. A job with a
callback_url on 127.0.0.1 (a small HTTP server in the test) gets one signed POST
that verifies with the deployment's secret, retried after a 500 and dead-lettered
with a reason when it never succeeds; a callback_url at a private address is
REJECTED at intake.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from vidpipe.completion import AnnounceDeps, announce
from vidpipe.config import Settings
from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe.jobs import JobStatus, JobStore, stable_id
from vidpipe_local.stack.stack import LOCAL_CALLBACK_SIGNING_SECRET, wait_until

pytestmark = pytest.mark.integration

# Pinned to one route (provider + model): these tests are about the announcement, not routing.
CLIP = {"duration_s": 1, "fps": 12, "resolution": "160x96", "provider": "generic", "model": "vidgen-1"}


class Receiver:
    """A callback receiver on 127.0.0.1 answering the statuses it is given, in order (then the last)."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append((body, {k.lower(): v for k, v in self.headers.items()}))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/vidpipe"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verified(self) -> list[dict]:
        """Each POST's body, verified with the local stack's signing secret (raises if one does not)."""
        return [Webhook(LOCAL_CALLBACK_SIGNING_SECRET).verify(body, headers) for body, headers in self.requests]


@pytest.fixture
def observed(local_stack):
    """The stack with a consumer's rule: every vidpipe event on the completion bus → an SQS queue."""
    return observe(local_stack, local_stack.built.ref("CompletionEventBus"))


def observe(s, bus: str):
    url = s.sqs.create_queue(QueueName="completion-observer")["QueueUrl"]
    arn = s.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = s.clients["events"]
    events.put_rule(Name="observe-vidpipe", EventBusName=bus, EventPattern=json.dumps({"source": ["vidpipe"]}))
    events.put_targets(Rule="observe-vidpipe", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
    s.observer_url = url
    s.observed = []
    return s


def receive_events(stack) -> list[dict]:
    while True:
        messages = stack.sqs.receive_message(QueueUrl=stack.observer_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return stack.observed
        for message in messages:
            stack.observed.append(json.loads(message["Body"]))
            stack.sqs.delete_message(QueueUrl=stack.observer_url, ReceiptHandle=message["ReceiptHandle"])


def events_for(stack, job_id: str, timeout_s: float = 30.0) -> list[dict]:
    """The job's events, once there is one and its execution (if any) has ended."""
    found = wait_until(lambda: [e for e in receive_events(stack) if e["detail"]["job_id"] == job_id],
                       bool, timeout_s, lambda _: f"no event for {job_id}")
    for execution in stack.executions():
        if execution["name"] == job_id:
            stack.wait_for_execution(execution["executionArn"])
    return [e for e in receive_events(stack) if e["detail"]["job_id"] == job_id] or found


def send(stack, **fields) -> str:
    body = json.dumps({"type": "generate", "prompt": "a paper boat drifting on a pond", **CLIP, **fields})
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def dead_letters(stack) -> list[dict]:
    return stack.sqs.receive_message(QueueUrl=stack.built.ref("CallbacksDeadLetterQueue"), MaxNumberOfMessages=10,
                                     MessageAttributeNames=["All"]).get("Messages", [])


# ----------------------------------------------------------------------------- events


def test_given_a_job_that_succeeds_with_a_callback_then_one_event_and_one_signed_post_are_delivered(observed):
    s = observed
    with Receiver([200]) as receiver:
        job_id = send(s, callback_url=receiver.url)
        job = s.wait_for_job(job_id)
        (event,) = events_for(s, job_id)
        s.drain()  # the callbacks queue

        assert job["status"] == "SUCCEEDED"
        assert event["source"] == "vidpipe" and event["detail-type"] == "Job Succeeded"
        detail = event["detail"]
        assert detail["id"] == f"{job_id}-succeeded"
        assert detail["status"] == "SUCCEEDED" and detail["kind"] == "generation" and detail["reason"] is None
        assert detail["outputs"]["video"]["s3_uri"].startswith(f"s3://{s.bucket}/outputs/{job_id}/")
        assert float(detail["spend"]["cost_usd"]) > 0
        assert receiver.verified() == [detail]
        (_, headers), = receiver.requests
        assert headers["webhook-id"] == detail["id"]
        assert dead_letters(s) == []


def test_given_a_job_that_fails_then_one_job_failed_event_carries_the_reason(observed):
    s = observed
    s.emulator.faults.add_spec("video.submit:job_fail:message=content policy violation")
    job_id = send(s)

    job = s.wait_for_job(job_id)
    (event,) = events_for(s, job_id)

    assert job["status"] == "FAILED"
    assert event["detail-type"] == "Job Failed"
    assert event["detail"]["status"] == "FAILED" and event["detail"]["error"] == "ProviderError"
    assert "content policy violation" in event["detail"]["reason"]


def test_given_a_message_that_is_rejected_then_one_job_rejected_event_says_why(observed):
    s = observed
    body = json.dumps({"type": "generate", "prompt": "waves", "fps": 0})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)
    s.drain()
    job_id = stable_id("rejected", body)

    (event,) = events_for(s, job_id)

    assert event["detail-type"] == "Job Rejected"
    assert event["detail"]["status"] == "REJECTED" and event["detail"]["kind"] == "message"
    assert "fps" in event["detail"]["reason"]


def test_given_a_partial_production_record_when_announced_then_one_job_partial_event(observed):
    s = observed
    jobs = JobStore(s.table, client=s.ddb)
    jobs.create("pro-partial-1", "production", {"type": "produce"}, status=JobStatus.PARTIAL,
                outputs={"episode": f"s3://{s.bucket}/productions/pro-partial-1/episode.mp4"},
                error={"error": "ShotsFailed", "reason": "2 of 5 shots failed"})

    announce(jobs.get("pro-partial-1"), deps=AnnounceDeps(Settings(), events=s.clients["events"], sqs=s.sqs))
    (event,) = events_for(s, "pro-partial-1")

    assert event["detail-type"] == "Job Partial"
    assert event["detail"]["status"] == "PARTIAL" and event["detail"]["reason"] == "2 of 5 shots failed"


def test_given_an_existing_bus_name_then_no_bus_is_created_and_jobs_are_announced_on_that_bus(make_stack):
    s = make_stack(parameter_overrides={"ExistingEventBusName": "team-bus"})
    s.clients["events"].create_event_bus(Name="team-bus")
    observe(s, "team-bus")
    body = json.dumps({"type": "generate", "prompt": "waves", "fps": 0})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)
    s.drain()

    (event,) = events_for(s, stable_id("rejected", body))

    assert event["detail-type"] == "Job Rejected"
    assert [b["Name"] for b in s.clients["events"].list_event_buses()["EventBuses"]] == ["default", "team-bus"]


# ----------------------------------------------------------------------------- callbacks


def test_given_a_receiver_that_answers_500_once_then_the_callback_is_retried_and_delivered(observed):
    s = observed
    with Receiver([500, 200]) as receiver:
        job_id = send(s, callback_url=receiver.url)
        s.wait_for_job(job_id)
        events_for(s, job_id)
        s.drain()

        first, second = receiver.verified()
        assert first == second and first["job_id"] == job_id
        assert receiver.requests[0][1]["webhook-id"] == receiver.requests[1][1]["webhook-id"] == f"{job_id}-succeeded"
        assert dead_letters(s) == []


def test_given_a_receiver_that_always_fails_then_the_callback_ends_in_the_dlq_with_a_reason(observed):
    s = observed
    attempts = Settings().callback_max_attempts
    with Receiver([503]) as receiver:
        job_id = send(s, callback_url=receiver.url)
        s.wait_for_job(job_id)
        events_for(s, job_id)
        s.drain()

        (letter,) = dead_letters(s)
        assert len(receiver.requests) == attempts
        assert "answered 503" in letter["MessageAttributes"]["reason"]["StringValue"]
        assert letter["MessageAttributes"]["attempts"]["StringValue"] == str(attempts)
        assert json.loads(letter["Body"])["detail"]["job_id"] == job_id


@pytest.mark.parametrize("url, why", [
    ("https://10.0.0.1/hook", "a private address"),
    ("https://169.254.169.254/latest/meta-data/", "the instance metadata service"),
    ("https://[::ffff:192.168.1.10]/hook", "a private address"),
    ("http://198.51.100.7/hook", "only https"),  # http is for allowed hosts (127.0.0.1 locally) only
])
def test_given_a_callback_url_at_a_private_address_then_the_job_is_rejected_at_intake(observed, url, why):
    s = observed
    body = json.dumps({"type": "generate", "prompt": "waves", **CLIP, "callback_url": url})
    s.sqs.send_message(QueueUrl=s.jobs_queue_url, MessageBody=body)
    s.drain()

    job = JobStore(s.table, client=s.ddb).get(stable_id("rejected", body))
    (event,) = events_for(s, job["job_id"])

    assert job["status"] == "REJECTED"
    assert job["error"]["reason"].startswith("callback_url: ") and why in job["error"]["reason"]
    assert s.executions(s.generation_arn) == []
    assert event["detail-type"] == "Job Rejected"
    s.drain()
    assert dead_letters(s) == []
