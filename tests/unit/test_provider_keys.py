"""Provider keys are read on use through the secret's cache, and afresh after a 401."""

import json

import boto3
import httpx
import pytest

from vidpipe import aws, redaction
from vidpipe.config import Settings
from vidpipe.errors import ProviderError
from vidpipe.providers.chat import ChatClient
from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.key_auth import refresh_key_on_401
from vidpipe.runtime import Deps, ProviderKeys

OLD, NEW = "gw-key-old-5a91c3", "gw-key-new-77d2e0"


@pytest.fixture
def secret(mocked_aws):
    """A provider secret in (moto) Secrets Manager: (arn, put(value))."""
    aws.reset_clients()
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="provider-keys", SecretString="{}")["ARN"]

    def put(keys: dict) -> None:
        client.put_secret_value(SecretId=arn, SecretString=json.dumps(keys))

    yield arn, put
    aws.reset_clients()


def test_given_a_key_set_after_the_container_started_when_used_then_it_is_read_then_not_at_cold_start(secret):
    arn, put = secret
    deps = Deps(settings=Settings(provider_secret_arn=arn), s3=None, jobs=None, accounting=None,
                keys=ProviderKeys(Settings(provider_secret_arn=arn), max_age_s=0))
    assert deps.api_key("chat_api_key") == ""  # the secret is still empty

    put({"chat_api_key": NEW})

    assert deps.api_key("chat_api_key") == NEW  # the same warm Deps, no redeploy


def test_given_a_cached_key_when_refreshed_then_the_secret_is_read_again_and_the_new_key_is_redacted(secret):
    arn, put = secret
    put({"chat_api_key": OLD})
    keys = ProviderKeys(Settings(provider_secret_arn=arn), max_age_s=300)
    assert keys.get("chat_api_key") == OLD
    redaction.clear()

    put({"chat_api_key": NEW})

    assert keys.get("chat_api_key") == OLD  # within max_age the cache answers
    assert keys.get("chat_api_key", refresh=True) == NEW
    assert keys.get("chat_api_key") == NEW  # and the refreshed value is what the cache now holds
    assert redaction.redact(f"sent {NEW}") == f"sent {redaction.REDACTED}"


class Gateway:
    """Accepts only ``accepted`` as the bearer token; records every token it was sent."""

    def __init__(self, accepted: str):
        self.accepted, self.tokens = accepted, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.tokens.append(token)
        if token != self.accepted:
            return httpx.Response(401, json={"error": {"message": "invalid key", "code": "invalid_api_key"}})
        return httpx.Response(200, json={"id": "cmpl-1", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


class Keys:
    """A key source: ``current`` from the cache, ``fresh`` when asked to refresh."""

    def __init__(self, current: str, fresh: str):
        self.current, self.fresh, self.refreshes = current, fresh, 0

    def __call__(self, refresh: bool) -> str:
        if refresh:
            self.refreshes += 1
            self.current = self.fresh
        return self.current


def chat(gateway: Gateway, keys: Keys) -> ChatClient:
    http = refresh_key_on_401(httpx.Client(transport=httpx.MockTransport(gateway)), keys)
    return ChatClient("https://gateway.test/v1", keys(False), http_client=http,
                      policy=RetryPolicy(max_attempts=1), sleep=lambda _s: None)


def test_given_a_rotated_key_when_the_old_one_gets_a_401_then_the_call_is_sent_once_more_with_the_new_one():
    gateway, keys = Gateway(accepted=NEW), Keys(current=OLD, fresh=NEW)

    result = chat(gateway, keys).complete("m", [{"role": "user", "content": "hi"}])

    assert result.content == "ok"
    assert gateway.tokens == [OLD, NEW] and keys.refreshes == 1


def test_given_a_key_that_is_simply_wrong_when_it_gets_a_401_then_it_is_not_resent():
    gateway, keys = Gateway(accepted="something-else"), Keys(current=OLD, fresh=OLD)

    with pytest.raises(ProviderError, match="401"):
        chat(gateway, keys).complete("m", [{"role": "user", "content": "hi"}])

    assert gateway.tokens == [OLD] and keys.refreshes == 1
