"""Completion webhooks, unit level (no network): Standard Webhooks verification against the
emulator's hand-made signatures (an independent implementation of the spec), the HTTP edge's
answers, what a webhook tells each adapter, the fallback interval, the function URL event and
the ASL's wiring of the wait."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from vidpipe.completion_webhooks import (Announcement, HttpRequest, WebhookRejected, await_timeout_s,
                                         handle_webhook, verify, with_webhooks)
from vidpipe.generation.state import PollState
from vidpipe.providers.video.generic import GenericVideoProvider
from vidpipe.providers.video.openai import OpenAIVideoProvider
from vidpipe_local.emulator.webhooks import new_secret, sign
from vidpipe_local.stack.function_urls import function_url_event, http_response

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_795_341_600
SECRET = new_secret()
BODY = json.dumps({"id": "evt_1", "object": "event", "created_at": NOW, "type": "video.completed",
                   "data": {"id": "video_abc"}}).encode()


def headers(msg_id: str = "wh_1", timestamp: int = NOW, body: bytes = BODY, secret: str = SECRET) -> dict:
    return {"Webhook-Id": msg_id, "Webhook-Timestamp": str(timestamp),
            "Webhook-Signature": sign(secret, msg_id, timestamp, body)}


def poll(**fields) -> PollState:
    return PollState(**{"provider": "openai", "provider_job_id": "video_abc", "submitted_at": NOW,
                        "deadline_at": NOW + 3600, "eta_s": 30, "wait_seconds": 32, **fields})


# ----------------------------------------------------------------------------- verification


def test_given_a_message_signed_by_the_spec_when_verified_then_its_body_comes_back():
    assert verify(BODY, headers(), [SECRET], now=NOW) == json.loads(BODY)


def test_given_a_rotation_when_either_secret_signed_then_it_verifies_and_any_matching_signature_counts():
    old, new = new_secret(), new_secret()
    assert verify(BODY, headers(secret=old), [new, old], now=NOW)["type"] == "video.completed"
    both = f"{sign(old, 'wh_1', NOW, BODY)} {sign(new, 'wh_1', NOW, BODY)}"
    assert verify(BODY, {**headers(), "webhook-signature": both}, [new], now=NOW)["id"] == "evt_1"


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp_signed", "secret", "version"])
def test_given_a_tampered_message_when_verified_then_the_signature_is_refused(tamper):
    h, body = headers(), BODY
    if tamper == "body":
        body = BODY.replace(b"video.completed", b"video.failed")
    elif tamper == "id":
        h["Webhook-Id"] = "wh_2"
    elif tamper == "timestamp_signed":
        h["Webhook-Timestamp"] = str(NOW + 1)
    elif tamper == "secret":
        h = headers(secret=new_secret())
    else:
        h["Webhook-Signature"] = h["Webhook-Signature"].replace("v1,", "v2,")

    with pytest.raises(WebhookRejected) as caught:
        verify(body, h, [SECRET], now=NOW)
    assert caught.value.reason == "signature"


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_given_a_timestamp_beyond_five_minutes_when_verified_then_it_is_stale(offset):
    with pytest.raises(WebhookRejected) as caught:
        verify(BODY, headers(timestamp=NOW + offset), [SECRET], now=NOW)
    assert caught.value.reason == "stale"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_given_a_timestamp_within_five_minutes_when_verified_then_it_passes(offset):
    assert verify(BODY, headers(timestamp=NOW + offset), [SECRET], now=NOW)


@pytest.mark.parametrize("missing", ["Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"])
def test_given_a_missing_header_when_verified_then_it_is_refused(missing):
    h = headers()
    del h[missing]
    with pytest.raises(WebhookRejected) as caught:
        verify(BODY, h, [SECRET], now=NOW)
    assert caught.value.reason == "headers"


def test_given_the_library_when_it_signs_then_it_agrees_with_the_emulators_hand_made_signature():
    from datetime import datetime, timezone

    from standardwebhooks.webhooks import Webhook

    ours = Webhook(SECRET).sign("wh_1", datetime.fromtimestamp(NOW, tz=timezone.utc), BODY.decode())
    assert ours == sign(SECRET, "wh_1", NOW, BODY)


# ----------------------------------------------------------------------------- the HTTP edge


def request(path="/openai", method="POST", body=BODY, h=None) -> HttpRequest:
    return HttpRequest(method=method, path=path, headers={k.lower(): v for k, v in (h or headers()).items()},
                       body=body)


def answer(req: HttpRequest, secrets=(SECRET,)) -> tuple[int, dict, list, list]:
    processed, rejected = [], []
    result = handle_webhook(req, providers={"openai": True, "generic": True, "bedrock": False},
                            secrets=list(secrets), now=NOW,
                            process=lambda wid, provider, a: processed.append((wid, provider, a)) or "resumed",
                            on_rejected=rejected.append)
    return result["statusCode"], json.loads(result["body"]), processed, rejected


def test_given_a_verified_completion_when_delivered_then_it_is_processed_once_with_its_provider():
    status, body, processed, rejected = answer(request())

    assert (status, body, rejected) == (200, {"status": "resumed"}, [])
    ((webhook_id, provider, announcement),) = processed
    assert (webhook_id, provider, announcement.provider_job_id, announcement.state()) == (
        "wh_1", "openai", "video_abc", "completed")


def test_given_a_bad_signature_when_delivered_then_401_a_metric_and_nothing_processed():
    status, _, processed, rejected = answer(request(h=headers(secret=new_secret())))

    assert (status, processed, rejected) == (401, [], ["signature"])


def test_given_no_secret_configured_when_delivered_then_it_is_refused():
    status, _, processed, rejected = answer(request(), secrets=())

    assert (status, processed, rejected) == (401, [], ["unconfigured"])


def test_given_other_events_paths_and_methods_when_delivered_then_they_do_not_resume_anything():
    other = json.dumps({"id": "evt_2", "type": "response.completed", "data": {"id": "resp_1"}}).encode()
    assert answer(request(body=other, h=headers(body=other)))[:3] == (200, {"status": "ignored"}, [])
    assert answer(request(path="/bedrock"))[0] == 404
    assert answer(request(method="GET"))[0] == 405
    big = b"{" + b" " * 70_000 + b"}"
    assert answer(request(body=big, h=headers(body=big)))[0] == 413


def test_given_an_announcement_when_parsed_then_only_bounded_known_fields_travel():
    announcement = Announcement.parse({"type": "video.failed", "data": {"id": "gen_1", "status": "failed",
                                                                         "error": "x" * 5000, "extra": "dropped"}},
                                      "wh_9")
    assert set(announcement.data) == {"id", "status", "error"} and len(announcement.data["error"]) == 2048
    assert Announcement.parse({"type": "video.completed", "data": {}}, "wh_9") is None


# ----------------------------------------------------------------------------- adapters and the fallback


def test_given_openai_news_when_read_then_completion_needs_no_check_and_failure_asks_for_the_reason():
    adapter = OpenAIVideoProvider("https://api.openai.com", "")

    done = adapter.announced("video_abc", {"type": "video.completed", "data": {"id": "video_abc"}})
    assert (done.state, done.download_url) == ("completed", "https://api.openai.com/v1/videos/video_abc/content")
    assert adapter.announced("video_abc", {"type": "video.failed", "data": {"id": "video_abc"}}) is None


def test_given_generic_news_when_read_then_its_status_object_says_where_and_why():
    adapter = GenericVideoProvider("https://video.example.com", "")
    url = "https://video.example.com/files/videos/gen_1.mp4?token=t"

    done = adapter.announced("gen_1", {"type": "video.completed", "data": {"status": "completed", "video_url": url}})
    failed = adapter.announced("gen_1", {"type": "video.failed", "data": {"status": "failed", "error": "nsfw"}})
    assert (done.state, done.download_url) == ("completed", url)
    assert (failed.state, failed.error) == ("failed", "nsfw")
    assert adapter.announced("gen_1", {"type": "video.completed", "data": {"status": "completed"}}) is None
    assert adapter.announced("gen_1", {"type": "video.completed", "data": {"status": "processing"}}) is None


def test_given_webhooks_when_the_wait_is_set_then_it_is_the_fallback_or_the_longer_eta_never_past_the_deadline():
    assert await_timeout_s(poll(wait_seconds=32), 600, NOW) == 600
    assert await_timeout_s(poll(wait_seconds=1260), 600, NOW) == 1260
    assert await_timeout_s(poll(wait_seconds=32), 600, NOW + 3500) == 100
    assert with_webhooks(poll(), supported=True, secret="", fallback_s=600, now=NOW).webhooks is False
    assert with_webhooks(poll(), supported=False, secret=SECRET, fallback_s=600, now=NOW).await_s is None
    assert with_webhooks(poll(), supported=True, secret=SECRET, fallback_s=600, now=NOW).await_s == 600


# ----------------------------------------------------------------------------- function URL events and the ASL


def test_given_a_request_when_it_becomes_a_function_url_event_then_it_has_the_v2_shape_and_maps_back():
    event = function_url_event("POST", "/openai?a=1&a=2", {"Content-Type": "application/json", "Webhook-Id": "x"},
                               BODY, source_ip="127.0.0.1", domain="127.0.0.1:9000", now_ms=NOW * 1000)
    parsed = HttpRequest.from_function_url(event)

    assert (event["version"], event["rawPath"], event["queryStringParameters"]) == ("2.0", "/openai", {"a": "1,2"})
    assert event["requestContext"]["http"]["method"] == "POST" and event["isBase64Encoded"] is False
    assert (parsed.method, parsed.path, parsed.headers["webhook-id"], parsed.body) == ("POST", "/openai", "x", BODY)
    binary = function_url_event("POST", "/", {"Content-Type": "application/octet-stream"}, b"\xff\x00",
                                source_ip="127.0.0.1", domain="d", now_ms=0)
    assert binary["isBase64Encoded"] and HttpRequest.from_function_url(binary).body == b"\xff\x00"
    assert http_response({"statusCode": 401, "headers": {"a": "b"}, "body": "{}"}) == (401, {"a": "b"}, b"{}")
    assert http_response({"statusCode": 200, "body": base64.b64encode(b"\x01").decode(), "isBase64Encoded": True}
                         )[2] == b"\x01"
    assert http_response({"ok": True}) == (200, {"content-type": "application/json"}, b'{"ok": true}')


def test_given_the_generation_asl_then_webhook_jobs_wait_on_a_token_with_the_fallback_and_return_to_polling():
    states = json.loads((ROOT / "statemachines" / "generation.asl.json").read_text())["States"]
    wait = states["AwaitCompletion"]

    assert states["SubmitGeneration"]["Next"] == "UsesWebhooks"
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert wait["TimeoutSecondsPath"] == "$.poll.await_s" and wait["ResultPath"] == "$.poll"
    catches = {tuple(c["ErrorEquals"]): c["Next"] for c in wait["Catch"]}
    assert catches[("States.Timeout",)] == "CheckGeneration" and wait["Next"] == "CheckGeneration"
    assert {c["Next"] for c in states["IsVideoReady"]["Choices"]} == {"StoreVideo", "AwaitCompletion"}
    assert states["IsVideoReady"]["Default"] == "WaitForVideo"
    assert states["SubmitGenerationWait"]["Next"] == "SubmitGeneration"  # the come-back-later loop is intact


# ----------------------------------------------------------------------------- least privilege


def test_given_the_real_wait_requests_then_only_the_two_webhook_functions_may_make_them(mocked_aws):
    import boto3
    from test_template_operations import RecordingClient, denied, statements_of

    from vidpipe.completion_webhooks import WaitStore

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
    recording = RecordingClient(client)
    store = WaitStore("t", recording)
    announcement = Announcement("video.completed", "wh_1", "video_abc", {"id": "video_abc"})

    store.put_token("openai", "video_abc", token="tok", job_id="job-1", poll=poll(), ttl=NOW + 3600)
    store.put_event("openai", announcement, ttl=NOW + 3600)
    assert store.token("openai", "video_abc")["job_id"] == "job-1" and store.event("openai", "video_abc")
    store.delete_token("openai", "video_abc", "tok")
    writes = recording.take()

    assert len(writes) == 3
    for function in ("AwaitCompletionFunction", "ProviderWebhookFunction"):
        assert denied(function, writes) == [], function
        actions = {a for st in statements_of(function) for a in ([st["Action"]] if isinstance(st["Action"], str)
                                                                 else st["Action"])}
        assert actions & {"states:SendTaskSuccess"} and not actions & {"states:SendTaskFailure", "dynamodb:Query"}
    # The public function touches nothing of the money: no ledger, budget or job record.
    assert denied("ProviderWebhookFunction", [("dynamodb:PutItem", "JOB#job-1", frozenset({"pk", "sk"}))])
    assert denied("ProviderWebhookFunction", [("dynamodb:UpdateItem", "BUDGET#global", frozenset({"pk", "sk"}))])
    assert denied("CheckGenerationFunction", writes)  # nobody else writes WAIT# items


class FakeSfn:
    def __init__(self, spent: bool = False):
        self.sent: list[tuple[str, dict]] = []
        self.spent = spent

    def send_task_success(self, taskToken, output):  # noqa: N803 (boto3's names)
        from botocore.exceptions import ClientError

        if self.spent:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}}, "SendTaskSuccess")
        self.sent.append((taskToken, json.loads(output)))


@pytest.fixture
def store(mocked_aws):
    import boto3

    from vidpipe.completion_webhooks import WaitStore

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
    return WaitStore("t", client)


def test_given_a_webhook_before_the_token_when_the_wait_starts_then_the_wait_resumes_itself(store):
    from vidpipe.completion_webhooks import await_completion, take_announcement

    sfn = FakeSfn()
    news = Announcement("video.completed", "wh_1", "video_abc", {"id": "video_abc"})

    assert take_announcement(store, sfn, "openai", news, now=NOW) == "unknown_job"
    result = await_completion(store, sfn, token="tok", job_id="job-1", poll=poll(webhooks=True, await_s=600), now=NOW)

    assert result == {"waiting": False, "resumed": True}
    ((token, output),) = sfn.sent
    assert token == "tok" and output["state"] == "completed"
    assert output["announced"] == {"type": "video.completed", "webhook_id": "wh_1", "data": {"id": "video_abc"}}
    assert store.token("openai", "video_abc") is None  # spent, so removed


def test_given_a_wait_that_already_ended_when_the_webhook_comes_then_it_is_late_and_the_token_goes(store):
    from vidpipe.completion_webhooks import await_completion, take_announcement

    await_completion(store, FakeSfn(), token="old", job_id="job-1", poll=poll(webhooks=True, await_s=600), now=NOW)
    news = Announcement("video.failed", "wh_2", "video_abc", {"id": "video_abc"})

    assert take_announcement(store, FakeSfn(spent=True), "openai", news, now=NOW) == "late"
    assert store.token("openai", "video_abc") is None
    fresh = FakeSfn()
    assert await_completion(store, fresh, token="new", job_id="job-1", poll=poll(webhooks=True, await_s=600),
                            now=NOW)["resumed"] is True  # the next wait still hears the news
    assert fresh.sent[0][1]["state"] == "failed"
