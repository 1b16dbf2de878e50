"""The events the Generation state machine hands each function, and the wiring
handlers share (adapters built from Settings, the provider secret and the clock)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from vidpipe import clock
from vidpipe.errors import InputRejected
from vidpipe.generation.enhance import Enhancement
from vidpipe.generation.messages import GenerateJob
from vidpipe.generation.state import PollState
from vidpipe.generation.watch import WatchStore
from vidpipe.providers.http import RetryPolicy
from vidpipe.providers.key_auth import refresh_key_on_401
from vidpipe.providers.video import VideoProvider, build_video_provider
from vidpipe.providers.video.base import HttpVideoProvider
from vidpipe.routing import VideoRoute
from vidpipe.runtime import Deps

E = TypeVar("E", bound=BaseModel)

# A status check gives up quickly on a 429/5xx storm: the next Wait is the better retry.
STATUS_RETRY = RetryPolicy(max_attempts=2, max_total_wait_s=10.0)


class JobEvent(BaseModel):
    job_id: str
    request: GenerateJob


class SubmitEvent(JobEvent):
    enhancement: Enhancement


class PollEvent(JobEvent):
    poll: PollState


def parse_event(model: type[E], event: dict) -> E:
    """A malformed event is a wiring bug, never worth a retry: InputRejected, readable."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors())
        raise InputRejected(f"invalid {model.__name__}: {problems}") from None


def watch_store(deps: Deps) -> WatchStore:
    return WatchStore(deps.settings.table_name, deps.jobs.ddb)


def video_provider(name: str, deps: Deps, policy: RetryPolicy = RetryPolicy(),
                   base_url: str | None = None) -> VideoProvider:
    """The adapter for a provider kind at ``base_url`` (a route's; None: Settings.video_base_url)."""
    settings = deps.settings
    provider = build_video_provider(name, base_url=base_url or settings.video_base_url,
                                    api_key=deps.api_key("video_api_key"),
                                    policy=policy, sleep=clock.sleep,
                                    on_attempt=lambda _attempt: deps.accounting.acquire(name))
    if isinstance(provider, HttpVideoProvider):  # a 401 reads the key again (Bedrock signs with the role)
        refresh_key_on_401(provider.http, lambda refresh: deps.api_key("video_api_key", refresh=refresh))
    return provider


def route_provider(route: VideoRoute, deps: Deps, policy: RetryPolicy = RetryPolicy()) -> VideoProvider:
    """[ROUTING] The adapter for one of a job's video routes."""
    return video_provider(route.provider, deps, policy, base_url=route.base_url)


def poll_provider(poll: PollState, deps: Deps, policy: RetryPolicy = RetryPolicy()) -> VideoProvider:
    """[ROUTING] The adapter for the provider job a poll state follows (its route's base URL)."""
    return video_provider(poll.provider, deps, policy, base_url=poll.base_url)
