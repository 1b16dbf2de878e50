"""The emulator's bill, read over HTTP from a running emulator: every fault
kind on every chat and video endpoint, and what a provider would charge for
it (rules in src/vidpipe_local/emulator/bill.py and docs/emulator-bill.md).

Chat: billed when generated (even if the body then broke on the way);
refused before generation: not billed. Video: billed when the job reaches
``completed`` on the emulator clock, fetched or not, once per job; cancelled
before completing, failed or stalled: never billed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest
from emulator_helpers import chat_body, image_bytes, image_part

ETA_S = 30.0  # the conftest emulator's default_eta_s
START = 1_700_000_000.0  # VirtualClock's start
# A request the client gives up on: the emulator holds it 0.3 s, the client waits 0.05 s.
HOLD = {"hold_s": 0.3}
CLIENT_GIVES_UP_S = 0.05

CHAT = chat_body("gemini-2.5-flash", {"type": "text", "text": "Describe this frame."},
                 image_part(image_bytes(64, 48)))

# Fault kinds that leave the request unanswered or answered with an error
# status, before the endpoint runs.
REFUSING_KINDS = ["500", "503", "429", "404", "reset"]
# Fault kinds after which the endpoint still runs: the answer is late or broken.
RUNNING_KINDS = ["latency", "timeout", "malformed", "truncate"]
ALL_KINDS = REFUSING_KINDS + RUNNING_KINDS


def _options(kind: str) -> dict:
    return {"latency": {"delay_s": 0.05}, "timeout": HOLD}.get(kind, {})


def _bill(anonymous: httpx.Client) -> dict:
    response = anonymous.get("/_emulator/bill")
    assert response.status_code == 200
    return response.json()


def _send(client: httpx.Client, method: str, url: str, kind: str | None = None, **kwargs) -> httpx.Response | None:
    """The answer, or None when the fault left none the client could read."""
    if kind == "timeout":
        kwargs["timeout"] = CLIENT_GIVES_UP_S
    try:
        response = client.request(method, url, **kwargs)
        response.read()
        return response
    except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError):
        return None


def _answered(emulator, client_request_id: str, deadline_s: float = 5.0) -> None:
    """Wait until the emulator has finished the request the client gave up on
    (a ``timeout`` fault answers after its hold; its call is recorded then)."""
    end = time.monotonic() + deadline_s
    while not any(call.client_request_id == client_request_id for call in emulator.calls):
        assert time.monotonic() < end, f"the emulator never finished request {client_request_id}"
        time.sleep(0.01)


# -- chat -------------------------------------------------------------------


def _chat(client, request_id: str, kind: str | None = None, body: dict = CHAT) -> httpx.Response | None:
    return _send(client, "POST", "/v1/chat/completions", kind, json=body, headers={"X-Client-Request-Id": request_id})


def test_given_a_clean_chat_call_when_billed_then_one_item_with_the_answers_id_usage_and_client_request_id(
        client, anonymous):
    answer = _chat(client, "attempt-1").json()

    bill = _bill(anonymous)

    assert bill["items"] == [{
        "kind": "chat", "id": answer["id"], "client_request_id": "attempt-1", "idempotency_key": None,
        "model": "gemini-2.5-flash", "input_tokens": answer["usage"]["prompt_tokens"],
        "output_tokens": answer["usage"]["completion_tokens"], "seconds": None, "resolution": None, "fps": None,
        "at": START,
    }]
    assert bill["totals"]["chat"] == {"calls": 1, "input_tokens": answer["usage"]["prompt_tokens"],
                                      "output_tokens": answer["usage"]["completion_tokens"]}
    assert bill["totals"]["video"] == {"jobs": 0, "seconds": 0}


@pytest.mark.parametrize("kind", RUNNING_KINDS)
def test_given_chat_fault_after_which_the_answer_is_generated_when_billed_then_charged_what_a_clean_call_costs(
        client, anonymous, emulator, kind):
    emulator.faults.add("chat", kind, **_options(kind))
    faulted = _chat(client, "faulted", kind)
    _answered(emulator, "faulted")
    clean = _chat(client, "clean").json()

    items = _bill(anonymous)["items"]

    assert [item["client_request_id"] for item in items] == ["faulted", "clean"]
    assert (items[0]["input_tokens"], items[0]["output_tokens"]) == (
        clean["usage"]["prompt_tokens"], clean["usage"]["completion_tokens"])
    assert items[0]["id"] != clean["id"]
    if kind == "latency":  # the only one whose body the client could read
        assert items[0]["id"] == faulted.json()["id"]
    else:
        assert faulted is None or faulted.status_code == 200


@pytest.mark.parametrize("kind", REFUSING_KINDS)
def test_given_chat_refused_by_a_fault_before_generation_when_billed_then_not_charged(client, anonymous, emulator,
                                                                                        kind):
    emulator.faults.add("chat", kind)
    refused = _chat(client, "refused", kind)
    _chat(client, "clean")

    bill = _bill(anonymous)

    assert refused is None or refused.status_code == int(kind)
    assert [item["client_request_id"] for item in bill["items"]] == ["clean"]
    assert bill["totals"]["chat"]["calls"] == 1


def test_given_wrong_key_rate_limit_or_invalid_body_when_billed_then_none_of_those_is_charged(
        client, anonymous, emulator, clock):
    emulator.rpm_limit = 1
    statuses = [
        _send(anonymous, "POST", "/v1/chat/completions", json=CHAT,
              headers={"Authorization": "Bearer wrong", "X-Client-Request-Id": "no-key"}).status_code,
        _chat(client, "admitted").status_code,
        _chat(client, "rate-limited").status_code,
    ]
    clock.advance(60)
    statuses.append(_chat(client, "no-model", body={"messages": CHAT["messages"]}).status_code)
    clock.advance(60)
    statuses.append(_chat(client, "bad-image", body=chat_body("gpt-4.1", {
        "type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGFuIGltYWdl"}})).status_code)

    bill = _bill(anonymous)

    assert statuses == [401, 200, 429, 400, 400]
    assert [item["client_request_id"] for item in bill["items"]] == ["admitted"]


def test_given_no_client_request_id_when_billed_then_item_says_null(client, anonymous):
    client.post("/v1/chat/completions", json=CHAT)

    assert _bill(anonymous)["items"][0]["client_request_id"] is None


@pytest.mark.parametrize("kind", [None, *RUNNING_KINDS])
def test_given_a_streamed_chat_read_one_line_or_broken_by_a_fault_when_billed_then_charged_what_a_plain_call_costs(
        client, anonymous, emulator, kind):
    if kind:
        emulator.faults.add("chat", kind, **_options(kind))
    streamed = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    try:
        with client.stream("POST", "/v1/chat/completions", json=streamed, headers={"X-Client-Request-Id": "streamed"},
                           timeout=CLIENT_GIVES_UP_S if kind == "timeout" else 10.0) as response:
            first = next(response.iter_lines())  # the client stops reading after the first event
    except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError):
        first = None
    _answered(emulator, "streamed")
    plain = _chat(client, "plain").json()

    items = _bill(anonymous)["items"]

    assert [item["client_request_id"] for item in items] == ["streamed", "plain"]
    assert (items[0]["input_tokens"], items[0]["output_tokens"]) == (
        plain["usage"]["prompt_tokens"], plain["usage"]["completion_tokens"])
    if kind in (None, "latency"):
        assert first.startswith("data: ") and items[0]["id"] in first


# -- video ------------------------------------------------------------------


@dataclass(frozen=True)
class WireShape:
    """One of the two wire shapes: how to submit, poll, cancel and download."""

    name: str
    submit_path: str
    body: dict
    model: str
    fps: float

    def status_path(self, job_id: str) -> str:
        return f"/v1/videos/{job_id}" if self.name == "openai" else f"/v1/video/generations/{job_id}"

    def cancel(self, job_id: str) -> tuple[str, str]:
        return ("DELETE", f"/v1/videos/{job_id}") if self.name == "openai" else (
            "POST", f"/v1/video/generations/{job_id}/cancel")

    def download_url(self, client, job_id: str) -> str:
        if self.name == "openai":
            return f"/v1/videos/{job_id}/content"
        return client.get(self.status_path(job_id)).json()["video_url"]


GENERIC = WireShape("generic", "/v1/video/generate",
                   {"prompt": "waves", "model": "vidgen-1", "duration_s": 1.5, "fps": 4, "resolution": "64x48"},
                   "vidgen-1", 4.0)
OPENAI = WireShape("openai", "/v1/videos", {"prompt": "waves", "model": "sora-2", "seconds": "2", "size": "64x48"},
                  "sora-2", 24.0)
APIS = [GENERIC, OPENAI]
SECONDS = {"generic": 1.5, "openai": 2.0}


def _submit(client, api: WireShape, key: str, kind: str | None = None, **extra) -> httpx.Response | None:
    headers = {"Idempotency-Key": key, "X-Client-Request-Id": f"submit-{key}"}
    return _send(client, "POST", api.submit_path, kind, json={**api.body, **extra}, headers=headers)


def _video_items(anonymous) -> list[dict]:
    return [item for item in _bill(anonymous)["items"] if item["kind"] == "video"]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
def test_given_a_job_when_the_clock_passes_its_eta_then_billed_once_without_being_fetched(client, anonymous, clock,
                                                                                          api):
    job = _submit(client, api, "k1").json()
    clock.advance(ETA_S - 1)
    before = _video_items(anonymous)
    clock.advance(1)
    after = _bill(anonymous)

    assert before == []
    assert after["items"] == [{
        "kind": "video", "id": job["id"], "client_request_id": "submit-k1", "idempotency_key": "k1",
        "model": api.model, "input_tokens": None, "output_tokens": None, "seconds": SECONDS[api.name],
        "resolution": "64x48", "fps": api.fps, "at": START + ETA_S,
    }]
    assert after["totals"]["video"] == {"jobs": 1, "seconds": SECONDS[api.name]}
    assert after["totals"]["chat"] == {"calls": 0, "input_tokens": 0, "output_tokens": 0}


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
def test_given_an_idempotency_key_replayed_when_billed_then_one_job(client, anonymous, clock, api):
    first = _submit(client, api, "same").json()
    clock.advance(5)
    replay = _submit(client, api, "same").json()
    clock.advance(ETA_S)

    items = _video_items(anonymous)

    assert replay["id"] == first["id"]
    assert [item["id"] for item in items] == [first["id"]]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
def test_given_a_job_cancelled_before_completing_when_billed_then_never(client, anonymous, clock, api):
    job = _submit(client, api, "k1").json()
    clock.advance(10)
    method, path = api.cancel(job["id"])
    assert client.request(method, path).status_code == 200
    clock.advance(24 * 3600)

    assert _video_items(anonymous) == []


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
def test_given_a_job_cancelled_after_completing_when_billed_then_still_charged(client, anonymous, clock, api):
    job = _submit(client, api, "k1").json()
    clock.advance(ETA_S)
    method, path = api.cancel(job["id"])
    client.request(method, path)

    assert [item["id"] for item in _video_items(anonymous)] == [job["id"]]


def test_given_generic_delete_before_completing_when_billed_then_never(client, anonymous, clock):
    job = _submit(client, GENERIC, "k1").json()
    client.delete(GENERIC.status_path(job["id"]))
    clock.advance(ETA_S)

    assert _video_items(anonymous) == []


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", ["job_fail", "job_stall"])
def test_given_a_job_that_fails_or_stalls_when_billed_then_never(client, anonymous, emulator, clock, api, kind):
    emulator.faults.add("video.submit", kind)
    _submit(client, api, "k1")
    clock.advance(24 * 3600)

    assert _video_items(anonymous) == []


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
def test_given_submit_refused_for_a_bad_parameter_wrong_key_or_rate_limit_when_billed_then_no_job(
        client, anonymous, emulator, clock, api):
    bad = {"duration_s": 500} if api.name == "generic" else {"seconds": "500"}
    emulator.rpm_limit = 1
    statuses = [_submit(client, api, "bad", **bad).status_code]
    clock.advance(60)
    statuses.append(_send(anonymous, "POST", api.submit_path, json=api.body,
                          headers={"Authorization": "Bearer wrong", "Idempotency-Key": "no-key"}).status_code)
    statuses += [_submit(client, api, "admitted").status_code, _submit(client, api, "limited").status_code]
    clock.advance(ETA_S)

    items = _video_items(anonymous)

    assert statuses == [400, 401, 200, 429]
    assert [item["idempotency_key"] for item in items] == ["admitted"]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", REFUSING_KINDS)
def test_given_submit_refused_by_a_fault_when_billed_then_no_job(client, anonymous, emulator, clock, api, kind):
    emulator.faults.add("video.submit", kind)
    refused = _submit(client, api, "k1", kind)
    clock.advance(24 * 3600)

    assert refused is None or refused.status_code == int(kind)
    assert _video_items(anonymous) == []


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", RUNNING_KINDS)
def test_given_submit_answered_late_or_broken_when_the_job_completes_then_billed_under_its_idempotency_key(
        client, anonymous, emulator, clock, api, kind):
    emulator.faults.add("video.submit", kind, **_options(kind))
    _submit(client, api, "lost-answer", kind)
    _answered(emulator, "submit-lost-answer")
    clock.advance(ETA_S)

    items = _video_items(anonymous)
    created = [call.job_id for call in emulator.calls if call.kind == "video.submit"]

    assert [(item["id"], item["idempotency_key"], item["client_request_id"]) for item in items] == [
        (created[0], "lost-answer", "submit-lost-answer")]
    # The client, retrying with the same key, learns the job it already paid for.
    assert _submit(client, api, "lost-answer").json()["id"] == created[0]
    assert len(_video_items(anonymous)) == 1


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_given_status_polls_hit_a_fault_when_the_job_completes_then_billed_once(client, anonymous, emulator, clock,
                                                                                   api, kind):
    job = _submit(client, api, "k1").json()
    emulator.faults.add("video.status", kind, times=None, **_options(kind))
    clock.advance(10)
    _send(client, "GET", api.status_path(job["id"]), kind, headers={"X-Client-Request-Id": "poll-1"})
    clock.advance(ETA_S)
    _send(client, "GET", api.status_path(job["id"]), kind, headers={"X-Client-Request-Id": "poll-2"})
    _answered(emulator, "poll-2")

    assert [item["id"] for item in _video_items(anonymous)] == [job["id"]]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_given_downloads_hit_a_fault_when_billed_then_the_job_once(client, anonymous, emulator, clock, api, kind):
    job = _submit(client, api, "k1").json()
    clock.advance(ETA_S)
    url = api.download_url(client, job["id"])
    emulator.faults.add("video.download", kind, times=2, **_options(kind))
    for attempt in range(3):
        _send(client, "GET", url, kind if attempt < 2 else None, headers={"X-Client-Request-Id": f"get-{attempt}"})
    _answered(emulator, "get-1")

    assert [item["id"] for item in _video_items(anonymous)] == [job["id"]]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", REFUSING_KINDS)
def test_given_a_cancel_refused_by_a_fault_when_the_job_completes_then_billed(client, anonymous, emulator, clock, api,
                                                                                kind):
    job = _submit(client, api, "k1").json()
    emulator.faults.add("video.cancel", kind)
    method, path = api.cancel(job["id"])
    _send(client, method, path, kind)
    clock.advance(ETA_S)

    assert [item["id"] for item in _video_items(anonymous)] == [job["id"]]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
def test_given_a_cancel_refused_for_a_wrong_key_or_the_rate_limit_when_the_job_completes_then_billed(
        client, anonymous, emulator, clock, api):
    kept, filler = _submit(client, api, "kept").json(), _submit(client, api, "filler").json()
    emulator.rpm_limit = 1
    statuses = [
        anonymous.request(*api.cancel(kept["id"]), headers={"Authorization": "Bearer wrong"}).status_code,
        client.request(*api.cancel(filler["id"])).status_code,  # fills the cancel endpoint's window
        client.request(*api.cancel(kept["id"])).status_code,
    ]
    clock.advance(ETA_S)

    assert statuses == [401, 200, 429]
    assert [item["id"] for item in _video_items(anonymous)] == [kept["id"]]


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
@pytest.mark.parametrize("kind", RUNNING_KINDS)
def test_given_a_cancel_answered_late_or_broken_when_the_eta_passes_then_never_billed(client, anonymous, emulator,
                                                                                       clock, api, kind):
    job = _submit(client, api, "k1").json()
    emulator.faults.add("video.cancel", kind, **_options(kind))
    method, path = api.cancel(job["id"])
    _send(client, method, path, kind, headers={"X-Client-Request-Id": "cancel-1"})
    _answered(emulator, "cancel-1")
    clock.advance(24 * 3600)

    assert _video_items(anonymous) == []


# -- the whole bill ---------------------------------------------------------


def test_given_chat_and_video_when_billed_then_items_in_clock_order_totals_add_up_and_python_view_agrees(
        client, anonymous, emulator, clock):
    short = _submit(client, GENERIC, "short", x_emulator_eta_s=5).json()
    _submit(client, OPENAI, "long", x_emulator_eta_s=100)
    clock.advance(10)
    first = _chat(client, "c1").json()
    clock.advance(200)
    second = _chat(client, "c2").json()

    bill = _bill(anonymous)

    assert [(item["kind"], item["at"]) for item in bill["items"]] == [
        ("video", START + 5), ("chat", START + 10), ("video", START + 100), ("chat", START + 210)]
    assert bill["items"][0]["id"] == short["id"]
    assert bill["totals"] == {
        "chat": {"calls": 2,
                 "input_tokens": first["usage"]["prompt_tokens"] + second["usage"]["prompt_tokens"],
                 "output_tokens": first["usage"]["completion_tokens"] + second["usage"]["completion_tokens"]},
        "video": {"jobs": 2, "seconds": 1.5 + 2.0},
    }
    assert emulator.bill() == bill


def test_given_a_bill_when_reset_over_http_then_empty_and_later_jobs_only(client, anonymous, clock):
    _submit(client, GENERIC, "before")
    _chat(client, "before")

    anonymous.post("/_emulator/reset")
    clock.advance(ETA_S)
    after_reset = _bill(anonymous)
    _chat(client, "after")

    assert after_reset["items"] == []
    assert [item["client_request_id"] for item in _bill(anonymous)["items"]] == ["after"]
