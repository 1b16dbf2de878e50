"""Job messages on the jobs queue: validation, defaults and execution names.

``parse_job_message`` turns a queue body into a ``GenerateJob`` or an
``AnalyzeJob`` (discriminated on ``type``) or raises ``InvalidJobMessage``
whose ``messages`` are the readable lines recorded on the REJECTED job.
Omitted analysis options come from Settings. A generate message names a
``tier`` of the routing table (vidpipe/routing.py) or gets the one its
``priority`` maps to (the table's ``priority_tiers``); with ``provider`` and
``model`` both given it is pinned to that one route, otherwise the tier's
ordered video routes are used (only one of the two given: the other comes from
Settings, pinned, as before tiers). An
``analyze`` message's options are ``AnalysisOptions``, the model upload
metadata is read with: one set of bounds for both.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from vidpipe.analysis.models import AnalysisOptions
from vidpipe.config import Settings, get_settings
from vidpipe.errors import InputRejected
from vidpipe.generation.physics import RANGES, Physics, mode_conflicts
from vidpipe.input_fields import RANGE_ERRORS, Money, NotBool, PlainText, priced_model, quoted, readable_error
from vidpipe.jobs import stable_id
from vidpipe.routing import chat_model, routing_table

VIDEO_PROVIDERS = ("generic", "openai", "bedrock")

# Request defaults that are product choices rather than deployment settings.
DEFAULT_DURATION_S = 6.0
DEFAULT_FPS = 24
DEFAULT_RESOLUTION = "1280x720"
DEFAULT_PRIORITY = 5

MIN_SIDE, MAX_SIDE = 64, 4096
MAX_PROMPT_CHARS = 4000
MIN_FRAMES = 2  # fewer is not a video
MAX_NAME_CHARS = 128  # model and provider names
TOKEN_PATTERN = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces
S3_URI_PATTERN = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.{1,1024}", re.DOTALL)


class InvalidJobMessage(InputRejected):
    """A job message that did not validate; ``messages`` has one readable line per problem."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages), errors=messages)
        self.messages = messages


def _with_defaults(data: Any, **defaults: Any) -> Any:
    """Fill fields that are absent or null (non-dict input is left for pydantic to reject)."""
    if not isinstance(data, dict):
        return data
    return {**data, **{name: value for name, value in defaults.items() if data.get(name) is None}}


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    client_token: str | None = Field(default=None, description="caller's idempotency token: one job per token")
    callback_url: str | None = Field(default=None, max_length=2048,
                                     description="POSTed the signed completion detail (docs/completion-events.md)")

    @field_validator("client_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not TOKEN_PATTERN.fullmatch(value):
            raise ValueError("must be 1–128 printable ASCII characters without spaces")
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The download guard's address checks: a private or internal address is refused here
        # (and checked again when the callback connects). vidpipe.callbacks.
        from vidpipe.callbacks import callback_url_problem
        from vidpipe.net.download_guard import system_resolver

        if value is None:
            return None
        resolver = (info.context or {}).get("resolver") or system_resolver
        problem = callback_url_problem(value, cls._settings(info), resolver)
        if problem:
            raise ValueError(problem)
        return value

    @staticmethod
    def _settings(info: ValidationInfo) -> Settings:
        return (info.context or {}).get("settings") or get_settings()


class GenerateJob(_Message):
    type: Literal["generate"]
    prompt: Annotated[str, PlainText] = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    mode: Literal["normal", "slow_motion", "time_lapse", "hyperlapse"] = "normal"
    duration_s: Annotated[float, NotBool] = Field(default=DEFAULT_DURATION_S, gt=0, le=60, allow_inf_nan=False)
    fps: Annotated[int, NotBool] = Field(default=DEFAULT_FPS, ge=1, le=120)
    resolution: str = Field(default=DEFAULT_RESOLUTION, max_length=32)
    physics: Physics = Physics()
    enhance_prompt: bool = False
    # [ROUTING] Both given: pinned to that route (no fallback). Neither: the tier's video routes.
    provider: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    model: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    tier: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                             description="routing tier; omitted: the one the table maps priority to")
    priority: Annotated[int, NotBool] = Field(default=DEFAULT_PRIORITY, ge=0, le=9,
                                              description="0 = most important; picks the tier when none is named")
    max_cost_usd: Money | None = Field(default=None, description="per-job cap; the daily/monthly budgets apply regardless")
    # [REFIMG] s3://<media bucket>/references/<key> or https://...; checked further at intake
    # (vidpipe.reference_image.url_problem) and fetched, checked and resized by SubmitGeneration.
    reference_image: str | None = Field(default=None, max_length=2048,
                                        description="an image the clip starts from (products, characters)")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_settings(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        settings = cls._settings(info)
        if (data.get("provider") is None) != (data.get("model") is None):  # one of them: pinned, as before tiers
            data = _with_defaults(data, provider=settings.video_provider, model=settings.video_model)
        if data.get("tier") is None:
            priority = data.get("priority", DEFAULT_PRIORITY)
            if isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 9:
                data = {**data, "tier": routing_table(settings).tier_for_priority(priority)}
        return data

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str | None, info: ValidationInfo) -> str | None:
        tiers = routing_table(cls._settings(info)).tiers
        if value is not None and value not in tiers:
            raise ValueError(f"unknown tier {quoted(value)}; known tiers: {', '.join(sorted(tiers))}")
        return value

    @field_validator("reference_image")
    @classmethod
    def _reference_image(cls, value: str | None) -> str | None:
        if value is not None and not (S3_URI_PATTERN.fullmatch(value) or re.fullmatch(r"https?://[^\s]+", value)):
            raise ValueError("must be s3://bucket/key or an https:// URL")
        return value

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        match = re.fullmatch(r"(\d+)x(\d+)", value)
        if not match:
            raise ValueError("must be WIDTHxHEIGHT, e.g. 1280x720")
        if not all(MIN_SIDE <= int(side) <= MAX_SIDE for side in match.groups()):
            raise ValueError(f"each side must be {MIN_SIDE}–{MAX_SIDE} px")
        return f"{int(match[1])}x{int(match[2])}"

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and value not in VIDEO_PROVIDERS:
            raise ValueError(f"unknown video provider {quoted(value)}; one of {', '.join(VIDEO_PROVIDERS)}")
        return value

    @field_validator("model")
    @classmethod
    def _priced(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else priced_model(value, "video", cls._settings(info))

    @model_validator(mode="after")
    def _physics_fits_mode(self) -> GenerateJob:
        conflicts = mode_conflicts(self.mode, self.physics)
        if conflicts:
            raise ValueError("; ".join(conflicts))
        return self

    @model_validator(mode="after")
    def _at_least_two_frames(self) -> GenerateJob:
        if self.duration_s * self.fps < MIN_FRAMES:
            raise ValueError(f"duration_s: {self.duration_s:g} s at {self.fps} fps is fewer than "
                             f"{MIN_FRAMES} frames; ask for at least {MIN_FRAMES / self.fps:g} s")
        return self

    @property
    def pinned(self) -> bool:
        """Provider and model given: that one route, no fallback."""
        return bool(self.provider and self.model)

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.resolution.split("x")
        return int(width), int(height)


class AnalyzeJob(AnalysisOptions, _Message):
    """Analysis of an object already in S3, with the same options an upload's
    metadata may carry (AnalysisOptions). The bucket and prefix are checked by
    start_jobs, which knows the media bucket."""

    type: Literal["analyze"]
    s3_uri: str = Field(max_length=1100, description="s3://bucket/key of the video to analyse")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_settings(cls, data: Any, info: ValidationInfo) -> Any:
        # Omitted: Settings.default_sampling / default_fps / chat_model (with a tier: its analysis model).
        settings = cls._settings(info)
        tier = data.get("tier") if isinstance(data, dict) else None
        tiered = isinstance(tier, str) and tier in routing_table(settings).tiers
        return _with_defaults(data, sampling=settings.default_sampling, fps=settings.default_fps,
                              model=chat_model(tier, "analysis", settings) if tiered else settings.chat_model)

    @field_validator("s3_uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        if not S3_URI_PATTERN.fullmatch(value):
            raise ValueError("must be s3://bucket/key")
        return value

    @property
    def options(self) -> AnalysisOptions:
        return AnalysisOptions.model_validate(self.model_dump(include=set(AnalysisOptions.model_fields)))

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.s3_uri.removeprefix("s3://").partition("/")
        return bucket, key


# ---------------------------------------------------------------- productions [PRODUCTION]
MAX_SCRIPT_CHARS = 20_000
MAX_SHOTS = 60
MAX_CHARACTERS = 20
SCRIPTS_PREFIX = "scripts/"  # a script given as s3:// must be an object of the media bucket under this prefix


class ShotDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["normal", "slow_motion", "time_lapse", "hyperlapse"] = "normal"
    physics: Physics = Physics()

    @model_validator(mode="after")
    def _physics_fits_mode(self) -> ShotDefaults:
        conflicts = mode_conflicts(self.mode, self.physics)
        if conflicts:
            raise ValueError("; ".join(conflicts))
        return self


class Character(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: Annotated[str, PlainText] = Field(min_length=1, max_length=64)
    description: Annotated[str, PlainText] = Field(default="", max_length=1000)
    reference_image: str | None = Field(default=None, max_length=2048,
                                        description="s3://<media bucket>/<key> or https://...")

    @field_validator("reference_image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not (S3_URI_PATTERN.fullmatch(value) or value.startswith("https://")):
            raise ValueError("must be s3://bucket/key or an https:// URL")
        return value


class ProduceJob(_Message):
    """A production: script → storyboard → shots (each a generation job) → one episode."""

    type: Literal["produce"]
    script: Annotated[str, PlainText] = Field(min_length=1, max_length=MAX_SCRIPT_CHARS,
                                              description="the script itself, or s3://<media bucket>/scripts/<key>")
    title: Annotated[str, PlainText] = Field(default="Untitled", min_length=1, max_length=200)
    style: Annotated[str, PlainText] = Field(default="", max_length=500)
    resolution: str = Field(default=DEFAULT_RESOLUTION, max_length=32)
    fps: Annotated[int, NotBool] = Field(default=DEFAULT_FPS, ge=1, le=120)
    target_duration_s: Annotated[float, NotBool] | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False)
    min_shots: Annotated[int, NotBool] = Field(default=8, ge=1, le=MAX_SHOTS)
    max_shots: Annotated[int, NotBool] = Field(default=12, ge=1, le=MAX_SHOTS)
    characters: list[Character] = Field(default_factory=list, max_length=MAX_CHARACTERS)
    defaults: ShotDefaults = ShotDefaults()
    approve_storyboard: bool = False
    approve_within_s: Annotated[int, NotBool] = Field(default=86_400, ge=1, le=7 * 86_400,
                                                      description="the storyboard's approval deadline")
    on_shot_failure: Literal["skip", "fail"] = "skip"
    max_cost_usd: Money | None = Field(default=None, description="the whole production's cap (storyboard + shots)")

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        return GenerateJob._resolution(value)

    @field_validator("script")
    @classmethod
    def _script(cls, value: str) -> str:
        if value.startswith("s3://") and not S3_URI_PATTERN.fullmatch(value):
            raise ValueError("an s3:// script must be s3://bucket/key")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> ProduceJob:
        problems = []
        if self.min_shots > self.max_shots:
            problems.append(f"min_shots {self.min_shots} is above max_shots {self.max_shots}")
        names = [c.name.casefold() for c in self.characters]
        if len(set(names)) != len(names):
            problems.append("characters: names must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def script_uri(self) -> tuple[str, str] | None:
        """(bucket, key) when the script is an S3 object, else None (inline)."""
        if not self.script.startswith("s3://"):
            return None
        bucket, _, key = self.script.removeprefix("s3://").partition("/")
        return bucket, key


JobMessage = Annotated[GenerateJob | AnalyzeJob | ProduceJob, Field(discriminator="type")]
_ADAPTER: TypeAdapter[GenerateJob | AnalyzeJob | ProduceJob] = TypeAdapter(JobMessage)
_TYPES = "'generate', 'analyze' or 'produce'"


def parse_job_message(body: str | bytes, settings: Settings | None = None) -> GenerateJob | AnalyzeJob | ProduceJob:
    """Validate a queue message body. Raises InvalidJobMessage listing every problem."""
    routing_table(settings or get_settings())  # [ROUTING] a bad table is a configuration error, not a bad message
    try:
        return _ADAPTER.validate_json(body, context={"settings": settings})
    except ValidationError as exc:
        raise InvalidJobMessage([_readable(error) for error in exc.errors()]) from None


def _readable(error: dict) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "union_tag_not_found":
        return f"type: missing; expected {_TYPES}"
    if kind == "union_tag_invalid":
        return f"type: unknown message type {quoted(error['input'].get('type'))}; expected {_TYPES}"
    if kind in RANGE_ERRORS and len(loc) == 3 and loc[1] == "physics":
        return f"{'.'.join(map(str, loc[1:]))}: {error['input']} is outside {RANGES[loc[2]].describe()}"
    return readable_error(error, loc[1:])  # loc[0] is the type tag


OMITTED_WHEN_UNSET = frozenset({"reference_image"})


def canonical_json(job: GenerateJob | AnalyzeJob) -> str:
    """The message content with defaults applied, in one spelling (sorted keys, no spaces)."""
    content = job.model_dump(mode="json", exclude={"client_token"})
    # Optional fields added later are left out while unset, so a message that does not use
    # them keeps the execution name it always had (a redelivery across a deploy is one job).
    for name in OMITTED_WHEN_UNSET:
        if content.get(name) is None:
            content.pop(name, None)
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def execution_name(job: GenerateJob | AnalyzeJob) -> str:
    """Deterministic Step Functions execution name (≤80 chars of [A-Za-z0-9-_]).

    Same client_token → same name; without one, the same content → same name,
    so a redelivered or duplicated message starts no second execution.
    """
    prefix = {"generate": "gen", "analyze": "ana", "produce": "pro"}[job.type]
    if job.client_token:
        readable = re.sub(r"[^A-Za-z0-9_-]", "-", job.client_token)[:48]
        # The digest keeps tokens apart that differ only in replaced characters.
        digest = hashlib.sha256(job.client_token.encode()).hexdigest()[:12]
        return f"{prefix}-t-{readable}-{digest}"
    return stable_id(prefix, canonical_json(job), length=40)
