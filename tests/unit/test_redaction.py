"""Secrets never leave in what we write: reasons, logs, job records, Lambda errors."""

from __future__ import annotations

import json
import io
import logging

import httpx
import pytest

from vidpipe import redaction
from vidpipe.errors import ProviderError, VidpipeError
from vidpipe.finalize import explain
from vidpipe.observability import logger
from vidpipe.providers.http import describe
from vidpipe.redaction import REDACTED, redact

# Not shaped like any well-known key: only the registry can hide it.
KEY = "vp-live-4f9c2e7a1b8d3e6f0a5c"
OTHER = "wh-sign-77aa31c0de"  # another value of the secret JSON (a webhook signing key)
ODD = 'q"7/x+y=z&w'  # characters that JSON and URLs escape


@pytest.fixture(autouse=True)
def registry():
    redaction.clear()
    redaction.register_all({"chat_api_key": KEY, "extra": {"webhook": OTHER}, "odd": ODD})
    yield
    redaction.clear()


def test_given_a_registered_key_when_an_error_quotes_it_then_reason_str_and_details_hide_it():
    exc = ProviderError(f"HTTP 401 from api.example.com/v1/chat/completions: Incorrect API key provided: {KEY}",
                        body={"echo": [KEY, OTHER]})

    assert KEY not in exc.reason and KEY not in str(exc) and KEY not in repr(exc)
    assert exc.reason.endswith(f"Incorrect API key provided: {REDACTED}")
    assert exc.details == {"body": {"echo": [REDACTED, REDACTED]}}


@pytest.mark.parametrize(("text", "expected"), [
    ("Incorrect API key provided: sk-proj-Ab12Cd34Ef56Gh78.", f"Incorrect API key provided: {REDACTED}."),
    ("Incorrect API key provided: sk-abc***************xyz", f"Incorrect API key provided: {REDACTED}"),
    ("sent Authorization: Bearer eyJhbGciOi.J9.abc", f"sent Authorization: Bearer {REDACTED}"),
    ("GET https://gen.example.com/v1/x?key=AIzaSyA1234567890abcdefghij&alt=json",
     f"GET https://gen.example.com/v1/x?key={REDACTED}&alt=json"),
    ("GET /files/v.mp4?token=s3cr3t-download-token", f"GET /files/v.mp4?token={REDACTED}"),
])
def test_given_an_unregistered_key_of_a_known_shape_when_redacted_then_it_is_hidden(text, expected):
    assert redact(text) == expected


def test_given_ordinary_text_when_redacted_then_it_is_unchanged():
    text = ("HTTP 503 from api.example.com/v1/chat/completions: upstream busy, task-key 42, risk-free; "
            "prompt: the bearer of bad news reads about sk-learn, keyed by hand")
    assert redact(text) == text


def test_given_a_short_secret_value_when_registered_then_ordinary_text_is_not_mangled():
    redaction.register("abc")
    assert redact("abcdef") == "abcdef"


def test_given_escaped_forms_of_a_key_when_redacted_then_they_are_hidden_too():
    assert ODD not in redact(json.dumps({"k": ODD}))
    assert "q%227%2Fx%2By%3Dz%26w" not in redact("url?x=q%227%2Fx%2By%3Dz%26w")
    assert redact(json.dumps({"k": ODD})) == json.dumps({"k": REDACTED})


def response(status: int, body: str) -> httpx.Response:
    request = httpx.Request("POST", "https://api.example.com/v1/chat/completions")
    return httpx.Response(status, text=body, request=request)


def test_given_an_error_body_echoing_the_key_when_described_then_the_key_is_gone():
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}})
    text = describe(response(401, body))
    assert KEY not in text and REDACTED in text
    assert text.startswith("HTTP 401 from api.example.com/v1/chat/completions: ")


def test_given_the_key_straddling_the_description_limit_when_described_then_no_part_of_it_survives():
    body = "x" * 190 + KEY  # cut first and the limit would keep its first 10 characters
    text = describe(response(401, body))
    assert KEY[:8] not in text


def test_given_a_step_functions_cause_quoting_the_key_when_explained_then_the_job_reason_hides_it():
    cause = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": f"bad key {KEY} then\nmore {KEY}"})
    assert explain({"Error": "Runtime.ExitError", "Cause": cause}) == {
        "error": "Runtime.ExitError", "reason": f"bad key {REDACTED} then"}


def test_given_a_key_near_the_reason_limit_when_explained_then_no_part_of_it_survives():
    assert KEY[:5] not in explain({"Error": "X", "Cause": "y" * 995 + KEY})["reason"]  # cut first: 5 would stay


@pytest.fixture
def log_output():
    """What the Powertools handler writes: its own formatter, on a buffer we can read."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_handler.formatter)
    logger.addHandler(handler)
    yield buffer
    logger.removeHandler(handler)


def test_given_log_records_carrying_the_key_when_logged_then_neither_the_output_nor_the_records_show_it(
        log_output, caplog):
    caplog.set_level(logging.INFO, logger="vidpipe")
    try:
        raise RuntimeError(f"gateway said: Incorrect API key provided: {KEY}")
    except RuntimeError:
        logger.exception("provider call failed for key %s", KEY, extra={"body": {"echo": KEY}, "other": OTHER})
    logger.info({"structured": [KEY, ODD]})
    logger.append_keys(leaky=KEY)
    try:
        logger.warning("with appended keys")
    finally:
        logger.remove_keys(["leaky"])

    out = log_output.getvalue()
    assert "provider call failed" in out and "with appended keys" in out  # the lines were written
    for secret in (KEY, OTHER, ODD, json.dumps(ODD)[1:-1]):
        assert secret not in out
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in json.dumps(vars(record), default=str)


def test_given_a_handler_raising_a_foreign_exception_with_the_key_when_it_escapes_then_its_text_is_redacted():
    class Context:
        function_name, function_version, memory_limit_in_mb = "fn", "$LATEST", 128
        invoked_function_arn, aws_request_id = "arn:aws:lambda:us-east-1:1:function:fn", "req-1"

    @logger.inject_lambda_context
    def handler(event, context):
        try:
            raise KeyError(KEY)
        except KeyError as inner:
            raise RuntimeError(f"upstream rejected {KEY}") from inner

    with pytest.raises(RuntimeError) as caught:  # same class: Step Functions' Retry/Catch still match
        handler({}, Context())

    assert KEY not in str(caught.value) and REDACTED in str(caught.value)  # Lambda's errorMessage
    assert KEY not in str(caught.value.__cause__)


def test_given_secrets_in_deps_when_built_then_every_value_is_registered():
    from vidpipe.config import Settings
    from vidpipe.runtime import Deps

    redaction.clear()
    Deps(settings=Settings(), s3=None, jobs=None, accounting=None,
         secrets={"chat_api_key": "sk-chat-xyz", "video_api_key": "vk-22-9988776655", "region_token": OTHER})

    assert redact("vk-22-9988776655 and wh-sign-77aa31c0de") == f"{REDACTED} and {REDACTED}"


def test_given_the_provider_secret_in_secrets_manager_when_loaded_then_its_values_and_the_local_key_are_registered(
        monkeypatch):
    import boto3
    from moto import mock_aws

    from vidpipe import aws
    from vidpipe.config import Settings
    from vidpipe.runtime import load_secrets

    redaction.clear()
    monkeypatch.setenv("VIDPIPE_CHAT_API_KEY", "dev-gw-key-31337abc")
    with mock_aws():
        aws.reset_clients()
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="provider", SecretString=json.dumps({"chat_api_key": KEY, "video_api_key": "vid-key-0042"}))["ARN"]
        try:
            secrets = load_secrets(Settings(provider_secret_arn=arn))
        finally:
            aws.reset_clients()

    assert secrets["chat_api_key"] == KEY
    assert redact(f"{KEY} vid-key-0042 dev-gw-key-31337abc") == f"{REDACTED} {REDACTED} {REDACTED}"


def test_given_no_registered_key_when_an_error_is_made_then_its_reason_is_kept_whole():
    redaction.clear()
    assert VidpipeError(f"no key here: {KEY}").reason == f"no key here: {KEY}"  # the registry, not luck, hid it
