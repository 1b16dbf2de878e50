"""Async video-generation adapters behind one interface (``VideoProvider``)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.video.base import Status, Submitted, VideoProvider, VideoRequest
from vidpipe.providers.video.bedrock import BedrockVideoProvider
from vidpipe.providers.video.generic import GenericVideoProvider
from vidpipe.providers.video.openai import OpenAIVideoProvider

__all__ = ["Status", "Submitted", "VideoProvider", "VideoRequest", "build_video_provider"]


def build_video_provider(name: str, *, base_url: str, api_key: str, policy: RetryPolicy = RetryPolicy(),
                         on_attempt: Callable[[int], None] | None = None,
                         http_client: httpx.Client | None = None, bedrock_client=None) -> VideoProvider:
    """The adapter for a job's ``provider`` ("generic" | "openai" | "bedrock")."""
    if name == "bedrock":
        return BedrockVideoProvider(bedrock_client, on_attempt=on_attempt)
    adapters = {"generic": GenericVideoProvider, "openai": OpenAIVideoProvider}
    if name not in adapters:
        raise ValueError(f"unknown video provider {name!r}")
    return adapters[name](base_url, api_key, policy=policy, on_attempt=on_attempt, http_client=http_client)
