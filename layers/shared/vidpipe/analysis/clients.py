"""The chat client a handler uses, built once per Lambda container."""

from __future__ import annotations

from functools import lru_cache

from vidpipe import clock
from vidpipe.providers.chat import ChatClient
from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.key_auth import refresh_key_on_401
from vidpipe.runtime import Deps


def chat_client(deps: Deps) -> ChatClient:
    s = deps.settings
    client = _chat_client(s.chat_base_url, deps.api_key("chat_api_key"), s.chat_max_attempts, s.chat_timeout_s)
    # A 401 reads the key again, bypassing the secret's cache, and retries once with a changed key.
    refresh_key_on_401(client.http, lambda refresh: deps.api_key("chat_api_key", refresh=refresh))
    return client


@lru_cache(maxsize=4)
def _chat_client(base_url: str, api_key: str, max_attempts: int, timeout_s: float) -> ChatClient:
    # clock.sleep, so the local stack's clock governs retry waits as it does Wait states.
    return ChatClient(base_url, api_key, policy=RetryPolicy(max_attempts=max_attempts), sleep=clock.sleep,
                      timeout_s=timeout_s)
