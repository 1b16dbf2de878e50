"""What a handler needs, built once per Lambda container from Settings.

Step logic takes a ``Deps`` so unit tests can hand in fakes; handlers call
``deps()`` which builds the real, AWS-backed one (moto-backed under the local stack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from vidpipe import aws
from vidpipe.accounting import Accounting
from vidpipe.config import Settings, get_settings
from vidpipe.jobs import JobStore


@dataclass
class Deps:
    settings: Settings
    s3: Any
    jobs: JobStore
    accounting: Accounting
    secrets: dict = field(default_factory=dict)  # provider API keys by name

    def api_key(self, name: str) -> str:
        """'chat_api_key' / 'video_api_key' from the provider secret; '' when not configured."""
        return str(self.secrets.get(name, ""))


def load_secrets(settings: Settings) -> dict:
    if not settings.provider_secret_arn:
        return {}
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
    return provider.get(settings.provider_secret_arn, transform="json", max_age=300)


@lru_cache(maxsize=1)
def deps() -> Deps:
    from vidpipe import clock
    from vidpipe.spend.accounting import DynamoAccounting

    settings = get_settings()
    return Deps(
        settings=settings,
        s3=aws.client("s3"),
        jobs=JobStore(settings.table_name),
        accounting=DynamoAccounting.from_settings(settings, clock=clock.now, sleep=clock.sleep),
        secrets=load_secrets(settings),
    )


def reset() -> None:
    """Forget cached settings, clients and deps (the local stack calls this)."""
    deps.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
