"""``DynamoAccounting``: the flows' ``vidpipe.accounting.Accounting``, backed by
the DynamoDB ledger, budgets and rate limiter of this package."""

from __future__ import annotations

from decimal import Decimal

from vidpipe import aws
from vidpipe.accounting import ProviderCall
from vidpipe.config import Settings
from vidpipe.spend.budgets import Budgets
from vidpipe.spend.ddb import Clock
from vidpipe.spend.ledger import Ledger, LedgerEntry, entry_id_for
from vidpipe.spend.prices import PriceTable
from vidpipe.spend.ratelimit import RateLimiter
from vidpipe.spend.scopes import BudgetConfig
from vidpipe.spend.usage import check_usage


class DynamoAccounting:
    def __init__(self, prices: PriceTable, ledger: Ledger, budgets: Budgets, limiter: RateLimiter, *,
                 chat_ttl_s: int, video_ttl_s: int, max_wait_s: float = 20.0):
        self.prices = prices
        self.ledger = ledger
        self.budgets = budgets
        self.limiter = limiter
        self.chat_ttl_s = chat_ttl_s
        self.video_ttl_s = video_ttl_s
        self.max_wait_s = max_wait_s

    @classmethod
    def from_settings(cls, settings: Settings, client=None, clock: Clock | None = None, sns=None,
                      sleep=None) -> DynamoAccounting:
        prices = PriceTable.load(settings)
        client = client or aws.client("dynamodb")
        table = settings.table_name
        return cls(
            prices, Ledger(table, client, clock, sleep),
            Budgets(table, BudgetConfig.from_settings(settings, prices), client, clock, sns, sleep),
            RateLimiter(table, settings.rate_limit_rpm, settings.rate_limit_tpm, client, clock, sleep),
            chat_ttl_s=settings.reservation_ttl_s,
            # A video reservation is held while the provider renders: it must outlive the polling.
            video_ttl_s=settings.reservation_ttl_s + int(settings.poll_deadline_s),
        )

    def reserve(self, job_id: str, amount_usd: Decimal, model: str, job_limit_usd: Decimal | None = None) -> str:
        ttl = self.video_ttl_s if model in self.prices.video else self.chat_ttl_s
        return self.budgets.reserve(job_id, amount_usd, model, job_limit=job_limit_usd, ttl_s=ttl).reservation_id

    def record_call(self, call: ProviderCall) -> Decimal:
        if call.model in self.prices.video:
            # Without the clip's resolution and fps the dearest rate applies (never under-counts).
            cost = self.prices.video_cost(call.model, call.clip_seconds, call.resolution, call.fps)
        else:
            cost = self.prices.chat_cost(call.model, call.input_tokens, call.output_tokens)
        self.ledger.record(LedgerEntry(
            entry_id=entry_id_for(call.job_id, call.step, call.call_key), job_id=call.job_id, step=call.step,
            provider=call.provider, model=call.model, input_tokens=call.input_tokens,
            output_tokens=call.output_tokens, images=call.images, clip_seconds=Decimal(str(call.clip_seconds)),
            latency_ms=call.latency_ms, cost_usd=cost, request_id=call.request_id,
        ))
        if call.expected_prompt_tokens is not None:
            check_usage(call.expected_prompt_tokens, call.input_tokens, call.images, model=call.model,
                        job_id=call.job_id)
        return cost

    def settle(self, job_id: str, reservation_id: str | None) -> dict:
        """Reconcile the reservation to the job's ledger total (once) and return the
        totals (Decimal money; handlers make their output JSON-safe)."""
        totals = self.ledger.job_totals(job_id)
        if reservation_id:
            self.budgets.reconcile(reservation_id, totals.cost_usd)
        return totals.model_dump()

    def release(self, reservation_id: str | None) -> None:
        if reservation_id:
            self.budgets.release(reservation_id)

    def acquire(self, provider: str, tokens: int = 0) -> None:
        self.limiter.acquire(provider, tokens, max_wait_s=self.max_wait_s)

    def sweep_expired(self) -> int:
        """For the scheduled sweep: release reservations whose holder died."""
        return self.budgets.sweep_expired()
