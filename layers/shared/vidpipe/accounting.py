"""The one interface the flows use for money and rate: reserve before a
provider call, record every call, settle or release at the end.

Flow code depends on the ``Accounting`` protocol; handlers build the real
DynamoDB-backed implementation (``vidpipe.spend``), unit tests hand in fakes.

The money design (what every implementation must keep true):

- One reservation per job, ``reservation_id_for(job_id)``.
- One ledger entry per billed provider call, keyed by (job_id, call_key) where
  ``call_key`` is the provider's identity of that call (chat: the client request
  id sent in ``X-Client-Request-Id``, new for every HTTP attempt; video: the
  provider job id). Recording a call adds its cost to the budget's ``spent`` in
  the same write that stores the entry, so ``spent`` equals the ledger sum.
- A chat attempt is announced first (``begin_call``: an intent holding the
  estimate) and its outcome removes the intent: an entry (``record_call``) or
  nothing (``abandon_call``). Intents left by a Lambda that died mid-call become
  unconfirmed entries at their estimate (``settle``, ``sweep``).
- Settling or releasing a reservation hands back only what no call consumed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from vidpipe.jobs import stable_id

if TYPE_CHECKING:
    from vidpipe.providers.chat import ChatResult


def reservation_id_for(job_id: str) -> str:
    """The job's one budget reservation (deterministic, so a retried reserve finds it)."""
    return stable_id("rsv", job_id)


@dataclass(frozen=True)
class ProviderCall:
    job_id: str
    step: str  # e.g. "analyze", "summarize", "enhance", "generate"
    # The provider's identity of ONE billed call: the chat client request id (one per HTTP
    # attempt) or the video provider job id (the Idempotency-Key when the id is unknown).
    # The ledger keeps one entry per (job_id, call_key).
    call_key: str
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    clip_seconds: float = 0.0
    resolution: str | None = None  # "WxH" and fps price a video clip exactly
    fps: float | None = None
    latency_ms: int = 0
    request_id: str | None = None  # the provider's own response id, when it answered
    expected_prompt_tokens: int | None = None  # image-token estimate, for the usage sanity check
    # False when the provider's usage could not be read (malformed or truncated body, read
    # timeout, a Lambda that died mid-call): the figures are our estimate, never below the bill.
    confirmed: bool = True
    reservation_id: str | None = None  # None: reservation_id_for(job_id)

    @property
    def job_reservation_id(self) -> str:
        return self.reservation_id or reservation_id_for(self.job_id)


class Accounting(Protocol):
    def reserve(self, job_id: str, amount_usd: Decimal, model: str,
                job_limit_usd: Decimal | None = None) -> str:
        """Reserve an estimate against every budget scope; returns ``reservation_id_for(job_id)``.
        Idempotent: a retried reserve returns the reservation already made.
        Raises BudgetExceeded (reason names the scope and numbers)."""

    def record_call(self, call: ProviderCall) -> Decimal:
        """Write the call's ledger entry, idempotent on (job_id, call_key); returns its cost.

        In the same write: job totals and aggregates, budget ``spent`` of the job's scopes,
        what the call consumes of the job's reservation, and removal of the call's intent.
        A confirmed call replaces an unconfirmed entry for the same key (the difference is
        applied); a second confirmed write, or an unconfirmed one after any, changes nothing.
        A call after the reservation was settled or released still adds to ``spent``."""

    def begin_call(self, estimate: ProviderCall) -> None:
        """Before an HTTP attempt: leave an intent holding the call's estimate (unconfirmed
        figures), so the call is recorded even if this Lambda dies before its outcome."""

    def abandon_call(self, job_id: str, call_key: str) -> None:
        """The attempt was not billed (HTTP status >= 400, connection never made): drop its intent."""

    def settle(self, job_id: str, reservation_id: str | None) -> dict:
        """End of the job: turn its leftover intents into unconfirmed entries, give back what
        is left of the reservation (LIVE → SETTLED) and return the job totals. Idempotent."""

    def release(self, reservation_id: str | None) -> None:
        """Give back what is left of a reservation, never what calls consumed (idempotent)."""

    def acquire(self, provider: str, tokens: int = 0) -> None:
        """Take from the provider's shared rate bucket; waits or raises RateLimited."""

    def sweep(self, intents_older_than_s: float) -> dict:
        """Scheduled: record intents older than ``intents_older_than_s`` (their Lambda died) as
        unconfirmed entries, then release the unconsumed rest of expired reservations.
        Returns {"intents": n, "reservations": m}."""


class ChatCallMeter:
    """Meters every HTTP attempt of one logical chat call into the ledger
    (``providers.chat.CallMeter``): an intent before the attempt, then an entry
    (billed) or nothing (not billed).

    A billed attempt whose usage could not be read is recorded unconfirmed at the
    estimate: ``input_tokens`` (image and text estimate) plus ``max_tokens`` output.
    """

    def __init__(self, accounting: Accounting, job_id: str, step: str, provider: str, model: str, *,
                 input_tokens: int, max_tokens: int, images: int = 0,
                 expected_prompt_tokens: int | None = None):
        self.accounting = accounting
        self._estimate = ProviderCall(job_id=job_id, step=step, call_key="", provider=provider, model=model,
                                      input_tokens=input_tokens, output_tokens=max_tokens, images=images,
                                      confirmed=False)
        self._expected = expected_prompt_tokens

    def estimate(self, call_key: str) -> ProviderCall:
        return replace(self._estimate, call_key=call_key)

    def before(self, call_key: str) -> None:
        self.accounting.begin_call(self.estimate(call_key))

    def billed(self, call_key: str, result: ChatResult | None) -> None:
        if result is None:
            call = self.estimate(call_key)
        else:
            call = replace(self._estimate, call_key=call_key, input_tokens=result.usage.input_tokens,
                           output_tokens=result.usage.output_tokens, latency_ms=result.latency_ms,
                           request_id=result.request_id, expected_prompt_tokens=self._expected, confirmed=True)
        self.accounting.record_call(call)

    def not_billed(self, call_key: str) -> None:
        self.accounting.abandon_call(self._estimate.job_id, call_key)
