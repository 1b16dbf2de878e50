"""Fakes shared by the generation unit tests."""

from __future__ import annotations

import json
from decimal import Decimal

from vidpipe.accounting import ProviderCall
from vidpipe.config import Settings
from vidpipe.errors import BudgetExceeded
from vidpipe.generation.messages import GenerateJob, parse_job_message
from vidpipe.providers.video import Status, Submitted, VideoProvider, VideoRequest

SETTINGS = Settings(video_provider="generic", video_model="vidgen-1", chat_model="gemini-2.5-flash",
                    default_sampling="scene", default_fps=1.0)


def generate_job(**fields) -> GenerateJob:
    body = {"type": "generate", "prompt": "a glass marble bounces on a wooden floor", **fields}
    job = parse_job_message(json.dumps(body), SETTINGS)
    assert isinstance(job, GenerateJob)
    return job


class FakeAccounting:
    def __init__(self, budget_usd: Decimal = Decimal("100")):
        self.budget_usd = budget_usd
        self.calls: list[ProviderCall] = []
        self.reservations: list[tuple[str, Decimal, str, Decimal | None]] = []
        self.acquired: list[tuple[str, int]] = []

    def reserve(self, job_id, amount_usd, model, job_limit_usd=None) -> str:
        if job_limit_usd is not None and amount_usd > job_limit_usd:
            raise BudgetExceeded(f"estimate ${amount_usd} exceeds the job limit ${job_limit_usd}")
        if amount_usd > self.budget_usd:
            raise BudgetExceeded(f"estimate ${amount_usd} exceeds the daily budget ${self.budget_usd}")
        self.reservations.append((job_id, amount_usd, model, job_limit_usd))
        return f"res-{len(self.reservations)}"

    def record_call(self, call: ProviderCall) -> Decimal:
        self.calls.append(call)
        return Decimal(0)

    def settle(self, job_id, reservation_id):
        return {}

    def release(self, reservation_id):
        return None

    def acquire(self, provider: str, tokens: int = 0) -> None:
        self.acquired.append((provider, tokens))


class ScriptedProvider(VideoProvider):
    """Answers status checks from a script; the last answer repeats."""

    name = "generic"

    def __init__(self, statuses: list[Status | Exception], eta_s: float = 30.0, can_cancel: bool = True):
        self.statuses = list(statuses)
        self.eta_s = eta_s
        self.can_cancel = can_cancel
        self.submitted: list[tuple[VideoRequest, str]] = []
        self.cancelled: list[str] = []
        self.checks = 0

    def submit(self, request, idempotency_key):
        self.submitted.append((request, idempotency_key))
        return Submitted("pj-1", self.eta_s)

    def status(self, provider_job_id):
        answer = self.statuses[min(self.checks, len(self.statuses) - 1)]
        self.checks += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel(self, provider_job_id):
        self.cancelled.append(provider_job_id)
        return self.can_cancel


class Clock:
    def __init__(self, start: float = 1_700_000_000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t
