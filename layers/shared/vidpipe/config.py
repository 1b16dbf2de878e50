"""Settings, read once from the environment at the handler edge.

Every Lambda gets its values from template.yaml (Globals + its own
Environment); the local stack resolves the same template to local values.

A misconfigured function fails at cold start, naming the variable
(``SettingsError``): every number is bounded (``SEGMENT_SECONDS=0`` would plan
segments forever), and no resource has a made-up default name. In Lambda
(``AWS_LAMBDA_FUNCTION_NAME`` is set) the variables Globals give every function
must be there; a variable only some functions get (``MEDIA_BUCKET``, …) is
checked by ``Settings.require`` where it is needed. Outside Lambda (tests, the
CLI) an unset resource is "".
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LAMBDA_MARKER = "AWS_LAMBDA_FUNCTION_NAME"  # set by the Lambda runtime in every function
# What template.yaml's Globals give every function: a function without them is misdeployed.
REQUIRED_IN_LAMBDA = ("table_name", "alarm_topic_arn")

# Bounded numbers: finite, and within what the code can work with.
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Usd = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+")]


class SettingsError(ValueError):
    """The environment does not configure a usable function. ``reason`` names each bad variable."""

    def __init__(self, problems: list[str]):
        self.reason = "configuration: " + "; ".join(problems)
        super().__init__(self.reason)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Resources: no default names (a made-up bucket or table name would be someone else's)
    table_name: str = ""
    idempotency_table_name: str = ""
    media_bucket: str = ""
    analysis_state_machine_arn: str = ""
    generation_state_machine_arn: str = ""
    production_state_machine_arn: str = ""  # [PRODUCTION] StartJobs starts produce jobs there
    provider_secret_arn: str = ""
    alarm_topic_arn: str = ""
    # Completion events out (vidpipe.completion): the EventBridge bus every terminal job is
    # announced on, and the queue callbacks are delivered from. Unset: nothing is announced.
    event_bus_name: str = ""
    callbacks_queue_url: str = ""
    callbacks_dead_letter_url: str = ""  # CallbackFunction: where an undeliverable callback goes, with why

    # Chat (analysis + prompt enhancement) through an OpenAI-compatible gateway
    chat_base_url: HttpUrl = "https://api.openai.com/v1"
    chat_model: str = Field(default="gemini-2.5-flash", min_length=1)
    enhance_model: str = Field(default="gemini-2.5-flash", min_length=1)
    chat_timeout_s: Seconds = 60.0
    chat_max_attempts: Annotated[int, Field(ge=1, le=10)] = 4

    # Async video generation
    video_provider: Literal["generic", "openai", "bedrock"] = "generic"
    video_base_url: HttpUrl = "https://video.example.com"
    video_model: str = Field(default="vidgen-1", min_length=1)
    video_output_s3_prefix: str = Field(default="outputs", min_length=1)
    # Tiers and fallbacks (vidpipe/routing.py): a JSON document or its path; "" = the packaged table
    routing_table_json: str = ""

    # Analysis (fps and frames_per_chunk as AnalysisOptions bounds them)
    segment_seconds: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = 60.0
    frames_per_chunk: Annotated[int, Field(ge=1, le=64)] = 8
    default_sampling: Literal["uniform", "scene", "keyframes"] = "scene"
    default_fps: Annotated[float, Field(gt=0, le=30, allow_inf_nan=False)] = 1.0
    max_frames_per_segment: Count = 120
    max_video_bytes: Count = 2 * 1024**3
    max_duration_s: Seconds = 3 * 3600.0
    max_width: Count = 3840
    max_height: Count = 2160

    # Generation polling
    poll_max_attempts: Count = 60
    poll_deadline_s: Seconds = 3600.0
    poll_min_wait_s: Seconds = 5.0
    poll_max_wait_s: Seconds = 300.0
    # [WEBHOOKS] With a webhook secret, a job waits this long for the provider's completion webhook
    # before one status check (then waits again): the polling fallback (docs/webhooks.md).
    webhook_fallback_s: Annotated[int, Field(ge=1, le=86400)] = 600

    # Spend
    price_table_json: str = ""  # overrides the packaged price table when set
    budget_daily_usd: Usd = Decimal("50")
    budget_monthly_usd: Usd = Decimal("500")
    reservation_ttl_s: Count = 900

    # Rate limit per provider (shared by every Lambda through DynamoDB)
    rate_limit_rpm: Count = 60
    rate_limit_tpm: Count = 1_000_000

    # Outbound downloads: hosts allowed despite being private (the local
    # profile sets "127.0.0.1" for the emulator). Empty in the deployed template.
    download_allow_hosts: str = ""
    download_require_https: bool = True
    # A download must finish within the deadline and, once the grace period is
    # over, keep an average of at least the minimum rate (0 turns that check off);
    # either breach is a retryable error. StoreVideo's timeout is 600 s: the
    # deadline leaves room for verifying and storing the clip after it.
    download_deadline_s: float = Field(default=420.0, gt=0)
    download_min_bytes_per_s: int = Field(default=64 * 1024, ge=0)
    download_min_rate_grace_s: float = Field(default=30.0, ge=0)
    # Callbacks (vidpipe.callbacks): one POST must answer within this; attempts before the DLQ
    # (the CallbacksQueue's maxReceiveCount in template.yaml).
    callback_timeout_s: Annotated[float, Field(gt=0, le=30, allow_inf_nan=False)] = 5.0
    callback_max_attempts: Annotated[int, Field(ge=1, le=20)] = 6

    # Local profile: provider seconds per real second (1 = real time).
    time_scale: float = Field(default=1.0, gt=0)
    # Local profile: the chat answers come from the provider emulator (reports say so). False when deployed.
    chat_emulated: bool = False

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError([_problem(error) for error in exc.errors()]) from None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = []
        if self.poll_max_wait_s < self.poll_min_wait_s:
            problems.append(f"POLL_MAX_WAIT_S={self.poll_max_wait_s:g} is below "
                            f"POLL_MIN_WAIT_S={self.poll_min_wait_s:g}")
        if os.environ.get(LAMBDA_MARKER):
            problems += [_unset(name) for name in REQUIRED_IN_LAMBDA if not getattr(self, name)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def require(self, *names: str) -> Settings:
        """``SettingsError`` naming each of these resource variables that is not set (call it at cold start)."""
        missing = [_unset(name) for name in names if not getattr(self, name)]
        if missing:
            raise SettingsError(missing)
        return self

    @property
    def download_allowlist(self) -> frozenset[str]:
        return frozenset(h.strip() for h in self.download_allow_hosts.split(",") if h.strip())


def _unset(name: str) -> str:
    return f"{name.upper()} is not set"


def _problem(error: dict) -> str:
    """One line per bad variable: its name as in the environment, the value, what is wrong."""
    if not error["loc"]:  # a model validator: the message names the variables itself
        return error["msg"].removeprefix("Value error, ")
    name = str(error["loc"][0]).upper()
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f"={str(value)[:60]}"
    if error["type"] == "string_pattern_mismatch":
        return f"{name}{shown}: must be an http:// or https:// URL"
    message = error["msg"].replace("Input should be", "must be").replace("String should", "must")
    return f"{name}{shown}: {message}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
