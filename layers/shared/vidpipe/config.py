"""Settings, read once from the environment at the handler edge.

Every Lambda gets its values from template.yaml (Globals + its own
Environment); the local stack resolves the same template to local values.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Resources
    table_name: str = "vidpipe-jobs"
    idempotency_table_name: str = "vidpipe-idempotency"
    media_bucket: str = "vidpipe-media"
    analysis_state_machine_arn: str = ""
    generation_state_machine_arn: str = ""
    provider_secret_arn: str = ""
    alarm_topic_arn: str = ""

    # Chat (analysis + prompt enhancement) through an OpenAI-compatible gateway
    chat_base_url: str = "https://api.openai.com/v1"
    chat_model: str = "gemini-2.5-flash"
    enhance_model: str = "gemini-2.5-flash"
    chat_timeout_s: float = 60.0
    chat_max_attempts: int = 4

    # Async video generation
    video_provider: str = "generic"  # generic | openai | bedrock
    video_base_url: str = "https://video.example.com"
    video_model: str = "vidgen-1"
    video_output_s3_prefix: str = "outputs"

    # Analysis
    segment_seconds: float = 60.0
    frames_per_chunk: int = 8
    default_sampling: str = "scene"
    default_fps: float = 1.0
    max_frames_per_segment: int = 120
    max_video_bytes: int = 2 * 1024**3
    max_duration_s: float = 3 * 3600.0
    max_width: int = 3840
    max_height: int = 2160

    # Generation polling
    poll_max_attempts: int = 60
    poll_deadline_s: float = 3600.0
    poll_min_wait_s: float = 5.0
    poll_max_wait_s: float = 300.0

    # Spend
    price_table_json: str = ""  # overrides the packaged price table when set
    budget_daily_usd: Decimal = Decimal("50")
    budget_monthly_usd: Decimal = Decimal("500")
    reservation_ttl_s: int = 900

    # Rate limit per provider (shared by every Lambda through DynamoDB)
    rate_limit_rpm: int = 60
    rate_limit_tpm: int = 1_000_000

    # Outbound downloads: hosts allowed despite being private (the local
    # profile sets "127.0.0.1" for the emulator). Empty in the deployed template.
    download_allow_hosts: str = ""
    download_require_https: bool = True

    # Local profile: provider seconds per real second (1 = real time).
    time_scale: float = Field(default=1.0, gt=0)

    @property
    def download_allowlist(self) -> frozenset[str]:
        return frozenset(h.strip() for h in self.download_allow_hosts.split(",") if h.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
