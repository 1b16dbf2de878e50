"""Async video-generation adapters behind one interface (``VideoProvider``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.video.base import Status, Submitted, VideoProvider, VideoRequest
from vidpipe.providers.video.bedrock import BedrockVideoProvider
from vidpipe.providers.video.generic import GenericVideoProvider
from vidpipe.providers.video.openai import OpenAIVideoProvider

__all__ = ["Status", "Submitted", "VideoProvider", "VideoRequest", "billed_seconds", "build_video_provider"]

ADAPTERS: dict[str, type[VideoProvider]] = {
    "generic": GenericVideoProvider, "openai": OpenAIVideoProvider, "bedrock": BedrockVideoProvider}


def billed_seconds(provider: str, model: str, duration_s: float) -> float:
    return ADAPTERS[provider].billed_seconds(model, duration_s)


def build_video_provider(name: str, *, base_url: str, api_key: str, policy: RetryPolicy = RetryPolicy(),
                         sleep: Callable[[float], None] = time.sleep,
                         on_attempt: Callable[[int], None] | None = None,
                         http_client: httpx.Client | None = None, bedrock_client=None) -> VideoProvider:
    """The adapter for a job's ``provider`` ("generic" | "openai" | "bedrock")."""
    if name == "bedrock":
        return BedrockVideoProvider(bedrock_client, on_attempt=on_attempt)
    if name not in ADAPTERS:
        raise ValueError(f"unknown video provider {name!r}")
    return ADAPTERS[name](base_url, api_key, policy=policy, sleep=sleep, on_attempt=on_attempt,
                          http_client=http_client)
