"""The one interface the flows use for money and rate: reserve before a
provider call, record every call, settle (reconcile) or release at the end.

Flow code depends on the ``Accounting`` protocol; handlers build the real
DynamoDB-backed implementation (``vidpipe.spend``), unit tests hand in fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class ProviderCall:
    job_id: str
    step: str  # e.g. "analyze", "summarize", "enhance", "generate"
    call_key: str  # stable per logical call (chunk id, attempt-independent): makes the ledger idempotent
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    clip_seconds: float = 0.0
    resolution: str | None = None  # "WxH" and fps price a video clip exactly
    fps: float | None = None
    latency_ms: int = 0
    request_id: str | None = None
    expected_prompt_tokens: int | None = None  # image-token estimate, for the usage sanity check


class Accounting(Protocol):
    def reserve(self, job_id: str, amount_usd: Decimal, model: str,
                job_limit_usd: Decimal | None = None) -> str:
        """Reserve an estimate against every budget scope; returns a reservation id.
        Raises BudgetExceeded (reason names the scope and numbers)."""

    def record_call(self, call: ProviderCall) -> Decimal:
        """Write one ledger entry (idempotent on job_id + step + call_key); returns its cost."""

    def settle(self, job_id: str, reservation_id: str | None) -> dict:
        """Reconcile the reservation to the job's actual ledger total; returns the job totals."""

    def release(self, reservation_id: str | None) -> None:
        """Give an unused reservation back (idempotent)."""

    def acquire(self, provider: str, tokens: int = 0) -> None:
        """Take from the provider's shared rate bucket; waits or raises RateLimited."""
