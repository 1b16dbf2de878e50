"""Fakes shared by the generation unit tests."""

from __future__ import annotations

import json
from decimal import Decimal

from vidpipe.accounting import ProviderCall, reservation_id_for
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
    """Keeps the ledger like the DynamoDB one: one entry per (job, call_key) in ``calls``, a
    confirmed entry replacing an unconfirmed one; open intents in ``intents`` until their
    outcome; settle records the job's leftover intents at their estimate."""

    def __init__(self, budget_usd: Decimal = Decimal("100")):
        self.budget_usd = budget_usd
        self.calls: list[ProviderCall] = []
        self.intents: dict[tuple[str, str], ProviderCall] = {}
        self.reservations: list[tuple[str, Decimal, str, Decimal | None]] = []
        self.acquired: list[tuple[str, int]] = []

    def reserve(self, job_id, amount_usd, model, job_limit_usd=None) -> str:
        if job_limit_usd is not None and amount_usd > job_limit_usd:
            raise BudgetExceeded(f"estimate ${amount_usd} exceeds the job limit ${job_limit_usd}")
        if amount_usd > self.budget_usd:
            raise BudgetExceeded(f"estimate ${amount_usd} exceeds the daily budget ${self.budget_usd}")
        self.reservations.append((job_id, amount_usd, model, job_limit_usd))
        return reservation_id_for(job_id)

    def record_call(self, call: ProviderCall) -> Decimal:
        self.intents.pop((call.job_id, call.call_key), None)
        known = [i for i, c in enumerate(self.calls) if (c.job_id, c.call_key) == (call.job_id, call.call_key)]
        if not known:
            self.calls.append(call)
        elif call.confirmed and not self.calls[known[0]].confirmed:
            self.calls[known[0]] = call
        return Decimal(0)

    def settle(self, job_id, reservation_id):
        for key, intent in list(self.intents.items()):
            if key[0] == job_id:
                self.record_call(intent)
        return {}

    def release(self, reservation_id):
        return None

    def acquire(self, provider: str, tokens: int = 0) -> None:
        self.acquired.append((provider, tokens))

    def begin_call(self, estimate: ProviderCall) -> None:
        self.intents.setdefault((estimate.job_id, estimate.call_key), estimate)

    def abandon_call(self, job_id: str, call_key: str) -> None:
        self.intents.pop((job_id, call_key), None)

    def sweep(self, intents_older_than_s: float) -> dict:
        return {"intents": 0, "reservations": 0}


class ScriptedProvider(VideoProvider):
    """Answers status checks from a script; the last answer repeats."""

    name = "generic"

    def __init__(self, statuses: list[Status | Exception], eta_s: float = 30.0, can_cancel: bool = True,
                 cancel_answer: Status | None = None, submit_errors: list[Exception] | None = None):
        self.statuses = list(statuses)
        self.eta_s = eta_s
        self.can_cancel = can_cancel
        # What a cancel answers: the job stopped, unless told otherwise (e.g. it had completed).
        self.cancel_answer = cancel_answer or Status("failed", error="cancelled by the client")
        self.submit_errors = list(submit_errors or [])
        self.submitted: list[tuple[VideoRequest, str]] = []
        self.cancelled: list[str] = []
        self.checks = 0

    def submit(self, request, idempotency_key):
        self.submitted.append((request, idempotency_key))
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        return Submitted("pj-1", self.eta_s)

    def status(self, provider_job_id):
        answer = self.statuses[min(self.checks, len(self.statuses) - 1)]
        self.checks += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel(self, provider_job_id):
        self.cancelled.append(provider_job_id)
        return self.cancel_answer if self.can_cancel else None


class Clock:
    def __init__(self, start: float = 1_700_000_000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t


class MemoryWatches:
    """An in-memory ``WatchStore``: the provider jobs being watched, and lost submit answers."""

    def __init__(self):
        self.watches: dict[tuple[str, str], object] = {}
        self.lost_keys: set[tuple[str, str]] = set()

    def add(self, watch) -> None:
        self.watches[(watch.job_id, watch.provider_job_id)] = watch

    def remove(self, job_id: str, provider_job_id: str) -> None:
        self.watches.pop((job_id, provider_job_id), None)

    def pending(self) -> list:
        return list(self.watches.values())

    def mark_lost(self, job_id: str, key: str) -> None:
        self.lost_keys.add((job_id, key))

    def lost(self, job_id: str, key: str) -> bool:
        return (job_id, key) in self.lost_keys

    def clear_lost(self, job_id: str, key: str) -> None:
        self.lost_keys.discard((job_id, key))
