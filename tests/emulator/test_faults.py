"""Auth, rate limits and injected faults: each fires when configured, for
the configured number of requests, and never otherwise."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from emulator_helpers import API_KEY, chat_body, image_bytes, image_part

from vidpipe_local.emulator import Emulator, FaultSpecError, parse_spec

CHAT = chat_body("gpt-4.1-mini", {"type": "text", "text": "hello"})
SMALL_VIDEO = {"prompt": "waves", "duration_s": 1, "fps": 4, "resolution": "64x64", "x_emulator_eta_s": 0}


def _chat(client) -> httpx.Response:
    return client.post("/v1/chat/completions", json=CHAT)


def _finished_video_url(client) -> str:
    job = client.post("/v1/video/generate", json=SMALL_VIDEO).json()
    return client.get(f"/v1/video/generations/{job['id']}").json()["video_url"]


V1_REQUESTS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/video/generate"),
    ("GET", "/v1/video/generations/gen_x"),
    ("POST", "/v1/video/generations/gen_x/cancel"),
    ("POST", "/v1/videos"),
    ("GET", "/v1/videos/video_x"),
    ("GET", "/v1/videos/video_x/content"),
    ("DELETE", "/v1/videos/video_x"),
]


@pytest.mark.parametrize(("method", "path"), V1_REQUESTS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", API_KEY])  # the last lacks "Bearer "
def test_given_missing_or_wrong_key_when_any_v1_endpoint_called_then_401(anonymous, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = anonymous.request(method, path, headers=headers, json={})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "wrong-key" not in response.text


def test_given_no_faults_when_many_requests_then_all_succeed(client, emulator):
    statuses = [_chat(client).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert all(call.fault is None for call in emulator.calls)


def test_given_429_fault_three_times_when_called_then_three_429_with_retry_after_then_200(client, emulator):
    emulator.faults.add(endpoint="chat", kind="429", times=3, retry_after=2)

    responses = [_chat(client) for _ in range(4)]

    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert all(r.headers["Retry-After"] == "2" for r in responses[:3])
    assert [c.fault for c in emulator.calls] == ["429", "429", "429", None]


def test_given_fault_on_chat_when_video_called_then_video_unaffected(client, emulator):
    emulator.faults.add("chat", "500", times=None)

    assert client.post("/v1/video/generate", json=SMALL_VIDEO).status_code == 200
    assert _chat(client).status_code == 500


@pytest.mark.parametrize("status", [500, 503])
def test_given_server_error_fault_when_called_then_that_status(client, emulator, status):
    emulator.faults.add("video.status", str(status))
    job = client.post("/v1/video/generate", json=SMALL_VIDEO).json()

    first = client.get(f"/v1/video/generations/{job['id']}")
    second = client.get(f"/v1/video/generations/{job['id']}")

    assert (first.status_code, second.status_code) == (status, 200)
    assert first.json()["error"]["type"] == "server_error"


def test_given_rpm_limit_when_exceeded_then_429_until_the_window_slides(emulator, client, clock):
    emulator.rpm_limit = 3
    statuses = [_chat(client).status_code for _ in range(3)]
    clock.advance(20)
    limited = _chat(client)
    other_endpoint = client.post("/v1/video/generate", json=SMALL_VIDEO)
    clock.advance(40)
    after_window = _chat(client)

    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "40"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert other_endpoint.status_code == 200
    assert after_window.status_code == 200


def test_given_latency_fault_when_called_then_answer_is_late_but_right(client, emulator):
    emulator.faults.add("chat", "latency", delay_s=0.3)

    started = time.monotonic()
    response = _chat(client)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_given_timeout_fault_when_client_waits_less_then_client_times_out(emulator, client):
    emulator.faults.add("chat", "timeout", hold_s=2)

    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=CHAT, timeout=0.3)
    assert _chat(client).status_code == 200


def test_given_reset_fault_when_called_then_connection_is_reset(client, emulator):
    emulator.faults.add("chat", "reset")

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        _chat(client)
    assert _chat(client).status_code == 200
    assert emulator.calls[0].fault == "reset"


def test_given_malformed_fault_when_chat_called_then_body_is_not_json(client, emulator):
    emulator.faults.add("chat", "malformed")

    response = _chat(client)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_given_truncate_fault_when_video_downloaded_then_body_is_really_cut_short(client, emulator):
    url = _finished_video_url(client)
    whole = client.get(url).content
    emulator.faults.add("video.download", "truncate")

    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", url) as response:
            assert int(response.headers["Content-Length"]) == len(whole)
            for chunk in response.iter_raw():
                received += chunk
    assert 0 < len(received) < len(whole)
    assert bytes(received) == whole[: len(received)]


def test_given_fault_spec_posted_over_http_when_called_then_it_fires(client, anonymous):
    control = anonymous.post("/_emulator/faults", json={"spec": "chat:503:times=2,retry_after=7"})

    responses = [_chat(client) for _ in range(3)]

    assert control.status_code == 201
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].headers["Retry-After"] == "7"
    assert anonymous.get("/_emulator/faults").json()["faults"][0]["fired"] == 2


def test_given_bad_fault_posted_when_parsed_then_400(anonymous):
    response = anonymous.post("/_emulator/faults", json={"spec": "chat:explode"})

    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


def test_given_calls_when_listed_and_reset_over_http_then_records_then_empty(client, anonymous, emulator):
    image = image_bytes(64, 64)
    client.post("/v1/chat/completions", json=chat_body("gemini-2.5-flash", image_part(image)),
                headers={"X-Client-Request-Id": "attempt-1"})
    emulator.faults.add("chat", "500", times=None)

    calls = anonymous.get("/_emulator/calls").json()["calls"]
    anonymous.post("/_emulator/reset")

    assert calls == [{
        "kind": "chat", "method": "POST", "path": "/v1/chat/completions", "timestamp": 1_700_000_000.0, "status": 200,
        "model": "gemini-2.5-flash", "image_signatures": [calls[0]["image_signatures"][0]], "prompt_tokens": 258,
        "completion_tokens": calls[0]["completion_tokens"], "job_id": None, "fault": None,
        "client_request_id": "attempt-1", "reference_image": None,
    }]
    assert emulator.calls == [] and emulator.faults.list() == []
    assert emulator.bill()["items"] == []
    assert _chat(client).status_code == 200


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("chat:429:times=3,retry_after=2", {"endpoint": "chat", "kind": "429", "times": 3, "retry_after": 2.0}),
        ("video.download:truncate", {"endpoint": "video.download", "kind": "truncate", "times": 1}),
        ("*:latency:delay_s=0.2,times=always", {"endpoint": "*", "kind": "latency", "times": None, "delay_s": 0.2}),
        ("video.submit:job_fail:message=content policy", {"kind": "job_fail", "message": "content policy"}),
    ],
)
def test_given_fault_spec_when_parsed_then_fields_set(spec, expected):
    fault = parse_spec(spec).to_dict()

    assert {k: fault[k] for k in expected} == expected


@pytest.mark.parametrize("spec", ["chat", "nowhere:429", "chat:job_fail", "chat:429:times=0", "chat:429:color=red"])
def test_given_invalid_fault_spec_when_parsed_then_rejected(spec):
    with pytest.raises(FaultSpecError):
        parse_spec(spec)


def test_given_emulator_without_key_when_called_without_auth_then_served(clock):
    with Emulator(api_key=None, clock=clock) as emulator:
        assert httpx.post(f"{emulator.chat_base_url}/chat/completions", json=CHAT).status_code == 200
