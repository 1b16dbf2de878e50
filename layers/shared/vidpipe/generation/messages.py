"""Job messages on the jobs queue: validation, defaults and execution names.

``parse_job_message`` turns a queue body into a ``GenerateJob`` or an
``AnalyzeJob`` (discriminated on ``type``) or raises ``InvalidJobMessage``
whose ``messages`` are the readable lines recorded on the REJECTED job.
Omitted provider / model / analysis options come from Settings.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from vidpipe.config import Settings, get_settings
from vidpipe.errors import InputRejected
from vidpipe.generation.physics import RANGES, Physics, mode_conflicts
from vidpipe.jobs import stable_id

VIDEO_PROVIDERS = ("generic", "openai", "bedrock")

# Request defaults that are product choices rather than deployment settings.
DEFAULT_DURATION_S = 6.0
DEFAULT_FPS = 24
DEFAULT_RESOLUTION = "1280x720"
DEFAULT_PRIORITY = 5

MIN_SIDE, MAX_SIDE = 64, 4096
MAX_PROMPT_CHARS = 4000
MONEY_QUANTUM = Decimal("0.0001")
TOKEN_PATTERN = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces
S3_URI_PATTERN = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+")


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


def _money(value: Decimal | None) -> Decimal | None:
    # "2.5" and "2.50" are the same budget, and must hash to the same execution name.
    return None if value is None else value.quantize(MONEY_QUANTUM)


def priced_model(model: str, kind: Literal["chat", "video"], settings: Settings) -> str:
    """A model the price table knows: an unpriced one could not be budgeted, so the
    job is refused at intake rather than failing after it was queued."""
    from vidpipe.spend.prices import PriceTable

    prices = PriceTable.load(settings)
    known = prices.video if kind == "video" else prices.chat
    if model not in known:
        raise ValueError(f"no price for {kind} model {model!r}, so its cost cannot be capped; "
                         f"priced: {', '.join(sorted(known))}")
    return model


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    client_token: str | None = Field(default=None, description="caller's idempotency token: one job per token")

    @field_validator("client_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not TOKEN_PATTERN.fullmatch(value):
            raise ValueError("must be 1–128 printable ASCII characters without spaces")
        return value

    @staticmethod
    def _settings(info: ValidationInfo) -> Settings:
        return (info.context or {}).get("settings") or get_settings()


class GenerateJob(_Message):
    type: Literal["generate"]
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    mode: Literal["normal", "slow_motion", "time_lapse", "hyperlapse"] = "normal"
    duration_s: float = Field(default=DEFAULT_DURATION_S, gt=0, le=60, allow_inf_nan=False)
    fps: int = Field(default=DEFAULT_FPS, ge=1, le=120)
    resolution: str = DEFAULT_RESOLUTION
    physics: Physics = Physics()
    enhance_prompt: bool = False
    provider: str  # omitted: Settings.video_provider
    model: str = Field(min_length=1)  # omitted: Settings.video_model
    priority: int = Field(default=DEFAULT_PRIORITY, ge=0, le=9)
    max_cost_usd: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False,
                                         description="per-job cap; the daily/monthly budgets apply regardless")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_settings(cls, data: Any, info: ValidationInfo) -> Any:
        settings = cls._settings(info)
        return _with_defaults(data, provider=settings.video_provider, model=settings.video_model)

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
    def _provider(cls, value: str) -> str:
        if value not in VIDEO_PROVIDERS:
            raise ValueError(f"unknown video provider {value!r}; one of {', '.join(VIDEO_PROVIDERS)}")
        return value

    @field_validator("max_cost_usd")
    @classmethod
    def _quantize(cls, value: Decimal | None) -> Decimal | None:
        return _money(value)

    @field_validator("model")
    @classmethod
    def _priced(cls, value: str, info: ValidationInfo) -> str:
        return priced_model(value, "video", cls._settings(info))

    @model_validator(mode="after")
    def _physics_fits_mode(self) -> GenerateJob:
        conflicts = mode_conflicts(self.mode, self.physics)
        if conflicts:
            raise ValueError("; ".join(conflicts))
        return self

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.resolution.split("x")
        return int(width), int(height)


class AnalyzeJob(_Message):
    type: Literal["analyze"]
    s3_uri: str = Field(description="s3://bucket/key of the video to analyse")
    # Omitted: Settings.default_sampling / default_fps / chat_model.
    sampling: Literal["uniform", "scene", "keyframes"]
    fps: float = Field(gt=0, le=30, allow_inf_nan=False)
    model: str = Field(min_length=1)
    budget_usd: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_settings(cls, data: Any, info: ValidationInfo) -> Any:
        settings = cls._settings(info)
        return _with_defaults(data, sampling=settings.default_sampling, fps=settings.default_fps,
                              model=settings.chat_model)

    @field_validator("model")
    @classmethod
    def _priced(cls, value: str, info: ValidationInfo) -> str:
        return priced_model(value, "chat", cls._settings(info))

    @field_validator("s3_uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        if not S3_URI_PATTERN.fullmatch(value):
            raise ValueError("must be s3://bucket/key")
        return value

    @field_validator("budget_usd")
    @classmethod
    def _quantize(cls, value: Decimal | None) -> Decimal | None:
        return _money(value)

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.s3_uri.removeprefix("s3://").partition("/")
        return bucket, key


JobMessage = Annotated[GenerateJob | AnalyzeJob, Field(discriminator="type")]
_ADAPTER: TypeAdapter[GenerateJob | AnalyzeJob] = TypeAdapter(JobMessage)
_TYPES = "'generate' or 'analyze'"
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def parse_job_message(body: str | bytes, settings: Settings | None = None) -> GenerateJob | AnalyzeJob:
    """Validate a queue message body. Raises InvalidJobMessage listing every problem."""
    try:
        return _ADAPTER.validate_json(body, context={"settings": settings})
    except ValidationError as exc:
        raise InvalidJobMessage([_readable(error) for error in exc.errors()]) from None


def _readable(error: dict) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "json_invalid":
        return f"message body is not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')})"
    if kind == "model_attributes_type" or (kind == "dict_type" and not loc):
        return "message body must be a JSON object"
    if kind == "union_tag_not_found":
        return f"type: missing; expected {_TYPES}"
    if kind == "union_tag_invalid":
        return f"type: unknown message type {error['input'].get('type')!r}; expected {_TYPES}"
    message = error["msg"].removeprefix("Value error, ")
    field = ".".join(str(part) for part in loc[1:])  # loc[0] is the type tag
    if not field:
        return message
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    if kind == "missing":
        return f"{field}: required"
    if kind in RANGE_ERRORS and len(loc) == 3 and loc[1] == "physics":
        return f"{field}: {error['input']} is outside {RANGES[loc[2]].describe()}"
    return f"{field}: {message}"


def canonical_json(job: GenerateJob | AnalyzeJob) -> str:
    """The message content with defaults applied, in one spelling (sorted keys, no spaces)."""
    return json.dumps(job.model_dump(mode="json", exclude={"client_token"}), sort_keys=True,
                      separators=(",", ":"))


def execution_name(job: GenerateJob | AnalyzeJob) -> str:
    """Deterministic Step Functions execution name (≤80 chars of [A-Za-z0-9-_]).

    Same client_token → same name; without one, the same content → same name,
    so a redelivered or duplicated message starts no second execution.
    """
    prefix = "gen" if job.type == "generate" else "ana"
    if job.client_token:
        readable = re.sub(r"[^A-Za-z0-9_-]", "-", job.client_token)[:48]
        # The digest keeps tokens apart that differ only in replaced characters.
        digest = hashlib.sha256(job.client_token.encode()).hexdigest()[:12]
        return f"{prefix}-t-{readable}-{digest}"
    return stable_id(prefix, canonical_json(job), length=40)
