import json

import httpx
import pytest
from analysis_fakes import RecordingMeter, ScriptedGateway, SleepRecorder, chat_with, completion, data_url_bytes, jpeg
from pydantic import BaseModel, ConfigDict

from vidpipe.errors import ProviderError, ProviderRetryable
from vidpipe.providers.chat import image_part, json_schema_format, strict_schema, text_part
from vidpipe.providers.http import RetryPolicy


class Inner(BaseModel):
    name: str


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: int
    items: list[Inner]


def test_given_images_and_a_schema_when_completing_then_the_request_has_image_parts_detail_and_strict_format():
    gateway = ScriptedGateway(completion('{"value": 1, "items": []}'))
    picture = jpeg()

    chat_with(gateway).complete("gpt-4.1", [{"role": "user", "content": [text_part("look"), image_part(picture, "low")]}],
                                json_schema_format("answer", Answer))

    request = gateway.requests[0]
    body = json.loads(request.content)
    assert request.url == "https://gateway.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    part = body["messages"][0]["content"][1]
    assert part["type"] == "image_url" and part["image_url"]["detail"] == "low"
    assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert data_url_bytes(part["image_url"]["url"]) == picture
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "answer" and fmt["json_schema"]["strict"]


def test_given_a_nested_model_when_making_a_strict_schema_then_refs_are_inlined_and_objects_closed():
    schema = strict_schema(Answer)

    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["additionalProperties"] is False and schema["required"] == ["value", "items"]
    inner = schema["properties"]["items"]["items"]
    assert inner["additionalProperties"] is False and inner["required"] == ["name"]


def test_given_a_completion_when_parsed_then_usage_request_id_and_content_are_returned():
    gateway = ScriptedGateway(completion("hello", prompt_tokens=345, completion_tokens=12, request_id="req-9"))

    result = chat_with(gateway).complete("m", [{"role": "user", "content": "hi"}])

    assert (result.content, result.usage.input_tokens, result.usage.output_tokens, result.request_id) == \
        ("hello", 345, 12, "req-9")


def test_given_429_with_retry_after_when_completing_then_it_waits_that_long_and_succeeds():
    sleep = SleepRecorder()
    gateway = ScriptedGateway(httpx.Response(429, headers={"retry-after": "7"}, json={"error": {}}),
                              completion("ok"))

    result = chat_with(gateway, sleep).complete("m", [{"role": "user", "content": "hi"}])

    assert result.content == "ok"
    assert sleep.waits == [7.0]
    assert len(gateway.requests) == 2


@pytest.mark.parametrize("status", [400, 401])
def test_given_a_client_error_when_completing_then_it_is_not_retried(status):
    sleep = SleepRecorder()
    gateway = ScriptedGateway(httpx.Response(status, json={"error": {"message": "nope"}}))

    with pytest.raises(ProviderError) as raised:
        chat_with(gateway, sleep).complete("m", [{"role": "user", "content": "hi"}])

    assert len(gateway.requests) == 1 and sleep.waits == []
    assert f"HTTP {status}" in raised.value.reason
    assert "sk-test" not in raised.value.reason


def test_given_5xx_every_time_when_completing_then_it_gives_up_as_retryable_after_the_policy_attempts():
    gateway = ScriptedGateway(httpx.Response(503, json={}))

    with pytest.raises(ProviderRetryable):
        chat_with(gateway).complete("m", [{"role": "user", "content": "hi"}])

    assert len(gateway.requests) == 3


def test_given_a_rate_limit_hook_when_completing_then_it_runs_before_every_http_attempt():
    attempts = []
    gateway = ScriptedGateway(httpx.Response(500, json={}), completion("ok"))

    chat_with(gateway).complete("m", [{"role": "user", "content": "hi"}], on_attempt=attempts.append)

    assert attempts == [0, 1]


def test_given_invalid_json_then_valid_when_asking_structured_then_both_answers_are_metered_with_their_usage():
    meter = RecordingMeter()
    gateway = ScriptedGateway(completion("{not json", prompt_tokens=70, request_id="bad"),
                              completion('{"value": 3, "items": [{"name": "a"}]}', request_id="good"))

    answer, result = chat_with(gateway).complete_structured("m", [], Answer, name="answer", meter=meter)

    assert answer == Answer(value=3, items=[Inner(name="a")])
    assert result.request_id == "good"
    billed = [event for event in meter.events if event[0] == "billed"]
    assert [(key, r.request_id, r.usage.input_tokens) for _, key, r in billed] == [
        (gateway.client_request_ids[0], "bad", 70), (gateway.client_request_ids[1], "good", 100)]


def test_given_every_kind_of_attempt_when_completing_then_each_gets_its_own_request_id_and_its_outcome():
    meter = RecordingMeter()
    gateway = ScriptedGateway(httpx.Response(503, json={}), httpx.ConnectError("refused"),
                              httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("peer closed"),
                              completion("ok", request_id="resp-5"))
    chat = chat_with(gateway, policy=RetryPolicy(max_attempts=5, base_delay_s=0.1))

    result = chat.complete("m", [{"role": "user", "content": "hi"}], meter=meter)

    ids = gateway.client_request_ids
    assert len(set(ids)) == 5 and result.call_key == ids[4]
    assert [e[:2] for e in meter.events] == [
        ("before", ids[0]), ("not_billed", ids[0]),  # an HTTP error: nothing generated
        ("before", ids[1]), ("not_billed", ids[1]),  # never connected
        ("before", ids[2]), ("billed", ids[2]),  # sent, answer lost: may have been billed
        ("before", ids[3]), ("billed", ids[3]),
        ("before", ids[4]), ("billed", ids[4]),
    ]
    assert [e[2] is None for e in meter.events if e[0] == "billed"] == [True, True, False]
    assert meter.events[-1][2].request_id == "resp-5"


@pytest.mark.parametrize("body", [b'{"choices": [{"message": {"content": "cut sho', b"<html>gateway hiccup</html>",
                                  b'{"choices": []}', b"[1, 2]"])
def test_given_a_2xx_body_that_is_not_a_completion_when_completing_then_it_is_billed_at_the_estimate(body):
    meter = RecordingMeter()
    gateway = ScriptedGateway(httpx.Response(200, content=body))

    with pytest.raises(ProviderError) as raised:
        chat_with(gateway).complete("m", [{"role": "user", "content": "hi"}], meter=meter)

    assert raised.value.details["malformed"]
    assert meter.events == [("before", gateway.client_request_ids[0]), ("billed", gateway.client_request_ids[0], None)]


def test_given_a_completion_without_usage_when_completing_then_the_answer_is_used_and_billed_at_the_estimate():
    meter = RecordingMeter()
    gateway = ScriptedGateway(httpx.Response(200, json={"id": "r", "choices": [{"message": {"content": "ok"}}]}))

    result = chat_with(gateway).complete("m", [{"role": "user", "content": "hi"}], meter=meter)

    assert result.content == "ok" and not result.usage_reported
    assert meter.events[-1] == ("billed", gateway.client_request_ids[0], None)


def test_given_always_malformed_answers_when_asking_structured_then_it_stops_after_the_bound_with_provider_error():
    gateway = ScriptedGateway(completion('{"value": "three"}'))

    with pytest.raises(ProviderError) as raised:
        chat_with(gateway).complete_structured("m", [], Answer, name="answer", max_attempts=3)

    assert len(gateway.requests) == 3
    assert "answer schema" in raised.value.reason


def test_given_a_body_that_is_not_a_completion_when_asking_structured_then_it_is_asked_again():
    gateway = ScriptedGateway(httpx.Response(200, content=b"<html>gateway hiccup</html>"),
                              completion('{"value": 1, "items": []}'))

    answer, _ = chat_with(gateway).complete_structured("m", [], Answer, name="answer")

    assert answer.value == 1 and len(gateway.requests) == 2


def test_given_a_semantic_check_when_the_answer_fails_it_then_the_answer_counts_as_invalid():
    def check(answer):
        if answer.value != 2:
            raise ValueError("value must be 2")

    gateway = ScriptedGateway(completion('{"value": 1, "items": []}'), completion('{"value": 2, "items": []}'))

    answer, _ = chat_with(gateway).complete_structured("m", [], Answer, name="answer", check=check)

    assert answer.value == 2 and len(gateway.requests) == 2


def test_given_a_property_named_title_when_making_a_strict_schema_then_it_is_kept_and_required():
    class Episode(BaseModel):
        title: str
        shots: int

    schema = strict_schema(Episode)

    assert list(schema["properties"]) == ["title", "shots"] and schema["required"] == ["title", "shots"]
    assert "title" not in schema["properties"]["title"]  # pydantic's own annotation is still dropped
