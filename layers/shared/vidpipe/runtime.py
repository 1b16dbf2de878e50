"""What a handler needs, built once per Lambda container from Settings.

Step logic takes a ``Deps`` so unit tests can hand in fakes; handlers call
``deps()`` which builds the real, AWS-backed one (moto-backed under the local stack).

Every secret value a Deps holds is registered for redaction (vidpipe.redaction)
as soon as it is loaded, before any provider can echo it back.

Provider keys are read on use (``Deps.api_key``), not once per container:
Powertools' SecretsProvider keeps the secret for ``KEY_MAX_AGE_S``, so a key
put into (or rotated in) the secret reaches warm containers within that time,
and a 401 fetches it afresh at once (``api_key(name, refresh=True)``, wired
into the HTTP clients by vidpipe.providers.key_auth).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from vidpipe import aws
from vidpipe.accounting import Accounting
from vidpipe.config import Settings, get_settings
from vidpipe.jobs import JobStore
from vidpipe.redaction import register, register_all

# A key a developer exports to run against a real gateway (vidpipe-local analyze --api-key-env).
LOCAL_KEY_ENV = "VIDPIPE_CHAT_API_KEY"
# How long a container keeps the provider secret before reading it again (Powertools' cache).
KEY_MAX_AGE_S = 300


class ProviderKeys:
    """The provider secret, read through one SecretsProvider on every use: its cache
    answers for ``max_age_s``, then Secrets Manager is asked again."""

    def __init__(self, settings: Settings, provider: Any = None, max_age_s: int = KEY_MAX_AGE_S):
        self.secret_arn, self.max_age_s = settings.provider_secret_arn, max_age_s
        self._provider = provider

    def secrets(self, refresh: bool = False) -> dict:
        """The secret's JSON object (``refresh``: bypass the cache); every value is registered for redaction."""
        register(os.environ.get(LOCAL_KEY_ENV, ""))
        if not self.secret_arn:
            return {}
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
        secrets = self._provider.get(self.secret_arn, transform="json", max_age=self.max_age_s,
                                     force_fetch=refresh)
        register_all(secrets)
        return secrets

    def get(self, name: str, refresh: bool = False) -> str:
        return str(self.secrets(refresh).get(name, ""))


@dataclass
class Deps:
    settings: Settings
    s3: Any
    jobs: JobStore
    accounting: Accounting
    secrets: dict = field(default_factory=dict)  # fixed provider API keys by name (tests); see ``keys``
    keys: ProviderKeys | None = None  # the deployed source of keys: read on use, refreshed on demand

    def __post_init__(self):
        register_all(self.secrets)

    def api_key(self, name: str, refresh: bool = False) -> str:
        """'chat_api_key' / 'video_api_key' from the provider secret; '' when not configured.
        ``refresh`` bypasses the cache (after a 401: the key may have been rotated)."""
        if self.keys is not None:
            return self.keys.get(name, refresh=refresh)
        return str(self.secrets.get(name, ""))


def load_secrets(settings: Settings) -> dict:
    """The provider secret (a JSON object) now; every value in it is registered for redaction."""
    return ProviderKeys(settings).secrets()


@lru_cache(maxsize=1)
def deps() -> Deps:
    from vidpipe import clock
    from vidpipe.spend.accounting import DynamoAccounting

    from vidpipe.routing import routing_table

    settings = get_settings()
    routing_table(settings)  # [ROUTING] a bad or unpriced routing table fails the cold start, naming the model
    return Deps(
        settings=settings,
        s3=aws.client("s3"),
        jobs=JobStore(settings.table_name),
        accounting=DynamoAccounting.from_settings(settings, clock=clock.now, sleep=clock.sleep),
        keys=ProviderKeys(settings),
    )


def reset() -> None:
    """Forget cached settings, clients and deps (the local stack calls this)."""
    deps.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
