"""Completion webhooks on the local stack: the emulator signs and POSTs ``video.completed`` /
``video.failed`` to ProviderWebhookFunction's function URL (served on 127.0.0.1), which
resumes the Generation execution waiting on its task token (the real ASL under moto, task-token
waits on the VirtualClock). Status checks are read from the emulator's call log."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from spend_invariants import assert_money_invariants

import vidpipe.completion_webhooks as completion_webhooks
import vidpipe.observability as observability
from vidpipe.generation.messages import execution_name, parse_job_message
from vidpipe_local.emulator.webhooks import new_secret, sign

pytestmark = pytest.mark.integration

CLIP = {"duration_s": 1, "fps": 12, "resolution": "160x96"}
MODELS = {"generic": "vidgen-1", "openai": "sora-2"}
SWEEP_EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "sweep_reservations.json").read_text())
FALLBACK_S = 600  # WebhookFallbackSeconds' default


def send(stack, provider: str = "generic", **fields) -> str:
    body = json.dumps({"type": "generate", "prompt": "a paper boat drifting on a pond", **CLIP,
                       "provider": provider, "model": MODELS[provider], **fields})
    stack.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=body)
    return execution_name(parse_job_message(body))


def status_checks(stack) -> int:
    return sum(1 for call in stack.emulator.calls if call.kind == "video.status")


def settled(stack) -> None:
    result, errored = stack.invoke("SweepReservationsFunction", SWEEP_EVENT)
    assert not errored, result
    assert_money_invariants(stack)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def signed(secret: str, msg_id: str, timestamp: int, payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                  "webhook-signature": sign(secret, msg_id, timestamp, body)}


def wait_items(stack) -> list[dict]:
    items = stack.ddb.scan(TableName=stack.table)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("WAIT#")]


@pytest.fixture
def resumes(monkeypatch) -> list[str]:
    """Every SendTaskSuccess the webhook path makes (token-wise)."""
    sent: list[str] = []
    original = completion_webhooks.send_task_success

    def counting(sfn, token, output):
        sent.append(token)
        return original(sfn, token, output)

    monkeypatch.setattr(completion_webhooks, "send_task_success", counting)
    return sent


@pytest.fixture
def rejections(monkeypatch) -> list[dict]:
    """WebhooksRejected metrics (the handler module binds emit_metric when the stack loads it)."""
    seen: list[dict] = []
    original = observability.emit_metric

    def recording(name, unit, value, dimensions=None, metadata=None):
        if name == "WebhooksRejected":
            seen.append(dict(dimensions or {}))
        return original(name, unit, value, dimensions, metadata)

    monkeypatch.setattr(observability, "emit_metric", recording)
    return seen


@pytest.mark.long  # over ~5 s: make long (CI) runs it
@pytest.mark.parametrize("provider", ["generic", "openai"])
def test_given_a_webhook_capable_provider_when_the_job_ends_then_it_completes_without_a_status_check(
        make_stack, provider, resumes):
    s = make_stack(webhooks=True)
    job_id = send(s, provider)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert status_checks(s) == 0
    assert job["details"]["polls"] == 0
    assert [(d.type, d.status) for d in s.emulator.webhooks.deliveries()] == [("video.completed", 200)]
    assert len(resumes) == 1
    assert s.s3.head_object(Bucket=s.bucket, Key=f"outputs/{job_id}/video.mp4")["ContentLength"] > 0
    settled(s)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_the_webhook_is_dropped_when_the_job_ends_then_polling_picks_it_up_after_the_fallback(make_stack):
    s = make_stack(webhooks=True, emulator_options={"webhook_mode": "off"})
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert status_checks(s) == 1
    assert s.emulator.webhooks.deliveries() == []
    timings = job["details"]["timings"]
    # The job was due at 30 s; the one check came when the fallback wait ran out.
    assert FALLBACK_S <= timings["completed_at"] - timings["submitted_at"] <= FALLBACK_S + 60
    settled(s)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_forged_webhook_when_it_arrives_then_it_is_refused_counted_and_polling_finishes_the_job(
        make_stack, resumes, rejections):
    s = make_stack(webhooks=True, emulator_options={"webhook_mode": "forged"})
    job_id = send(s)

    job = s.wait_for_job(job_id)

    assert [(d.type, d.status) for d in s.emulator.webhooks.deliveries()] == [("video.completed", 401)]
    assert {"reason": "signature"} in rejections
    assert resumes == []
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert status_checks(s) == 1
    assert not [i for i in wait_items(s) if i["sk"]["S"] == "EVENT"]  # the forged news was never kept
    settled(s)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_duplicated_webhook_when_both_arrive_then_the_replay_resumes_nothing(make_stack, resumes):
    s = make_stack(webhooks=True, emulator_options={"webhook_mode": "duplicated"})
    job_id = send(s, "openai")

    job = s.wait_for_job(job_id)

    deliveries = s.emulator.webhooks.deliveries()
    assert [d.status for d in deliveries] == [200, 200]
    assert deliveries[0].webhook_id == deliveries[1].webhook_id
    assert len(resumes) == 1
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert status_checks(s) == 0
    settled(s)


def test_given_a_stale_or_replayed_webhook_when_it_arrives_then_it_is_refused_and_changes_nothing(
        make_stack, resumes, rejections):
    s = make_stack(webhooks=True)
    job_id = send(s)
    job = s.wait_for_job(job_id)
    assert job["status"] == "SUCCEEDED", job.get("error")
    (first,) = s.emulator.webhooks.deliveries()
    url = first.url
    before = (wait_items(s), len(resumes))

    replay = post(url, first.body.encode(), first.headers)  # the same message again, within the tolerance
    s.clock.advance(301)
    stale = post(url, first.body.encode(), first.headers)  # the same message 5 min later
    fresh_but_old, headers = signed(s.webhook_secret, "wh_stale_test", int(s.clock.now()) - 301,
                                    json.loads(first.body))
    old = post(url, fresh_but_old, headers)

    assert replay == (200, {"status": "resumed"})  # answered from the idempotency record
    assert stale[0] == 401 and old[0] == 401
    assert rejections.count({"reason": "stale"}) == 2
    assert (wait_items(s), len(resumes)) == before
    settled(s)


def test_given_a_signed_webhook_for_an_unknown_job_when_it_arrives_then_it_answers_200_and_resumes_nothing(
        make_stack, resumes):
    s = make_stack(webhooks=True)
    url = s.function_url("ProviderWebhookFunction") + "/openai"
    body, headers = signed(s.webhook_secret, "wh_unknown_job", int(s.clock.now()),
                           {"id": "evt_1", "object": "event", "created_at": int(s.clock.now()),
                            "type": "video.completed", "data": {"id": "video_nobody_waits_for_this"}})

    assert post(url, body, headers) == (200, {"status": "unknown_job"})
    assert resumes == []
    wrong_secret, headers = signed(new_secret(), "wh_unknown_job_2", int(s.clock.now()), json.loads(body))
    assert post(url, wrong_secret, headers)[0] == 401
    assert post(s.function_url("ProviderWebhookFunction") + "/bedrock", body, headers)[0] == 404


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_failed_job_when_its_webhook_arrives_then_the_job_fails_with_the_providers_reason(make_stack):
    s = make_stack(webhooks=True)
    s.emulator.faults.add_spec("video.submit:job_fail:message=content policy violation")
    job_id = send(s, "openai")

    job = s.wait_for_job(job_id)

    assert job["status"] == "FAILED"
    assert "content policy violation" in job["error"]["reason"]
    assert [(d.type, d.status) for d in s.emulator.webhooks.deliveries()] == [("video.failed", 200)]
    assert status_checks(s) == 1  # OpenAI's video.failed names no reason: one check reads it
    settled(s)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_webhook_later_than_the_fallback_when_it_arrives_then_polling_already_finished_and_it_is_ignored(
        make_stack, resumes):
    s = make_stack(webhooks=True, emulator_options={"webhook_mode": "delayed", "webhook_delay_s": 900})
    job_id = send(s)

    job = s.wait_for_job(job_id)
    s.wait_for_execution(job["execution_arn"])
    s.clock.advance(900)  # the emulator's delayed webhook is due now
    from vidpipe_local.stack.stack import wait_until

    wait_until(s.emulator.webhooks.deliveries, bool, 10, lambda d: "no delivery")

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert status_checks(s) == 1
    assert [d.status for d in s.emulator.webhooks.deliveries()] == [200]
    assert len(resumes) == 1  # tried, and Step Functions refused the spent token
    settled(s)


@pytest.mark.long  # over ~5 s: make long (CI) runs it
def test_given_a_webhook_that_beats_the_wait_when_the_job_is_instant_then_the_wait_finds_its_news(make_stack):
    s = make_stack(webhooks=True, emulator_options={"default_eta_s": 0.0})  # done when submitted
    job_id = send(s, "openai")

    job = s.wait_for_job(job_id)

    assert job["status"] == "SUCCEEDED", job.get("error")
    assert status_checks(s) == 0  # whichever came first, the webhook or the token, the other resumed it
    assert [d.status for d in s.emulator.webhooks.deliveries()] == [200]
    settled(s)
