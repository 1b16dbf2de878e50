"""``DynamoAccounting``: the flows' ``vidpipe.accounting.Accounting``, backed by
the DynamoDB ledger, budgets and rate limiter of this package.

``record_call`` is where the ledger and the budgets meet: ONE TransactWriteItems
puts the entry (or upgrades an unconfirmed one), adds it to the job totals and
aggregates, adds its cost to ``spent`` of the job's scopes, consumes the job's
reservation and deletes the call's intent. Everything it writes is conditional
on what it read, so a lost race reads again; ``spent == ledger`` holds by
construction, whatever order calls, settles and sweeps run in.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from botocore.exceptions import ClientError

from vidpipe import aws
from vidpipe.accounting import ProviderCall
from vidpipe.config import Settings
from vidpipe.observability import logger
from vidpipe.spend.budgets import Budgets
from vidpipe.spend.ddb import Clock, cancellation_reasons
from vidpipe.spend.ledger import Ledger, LedgerEntry, entry_id_for
from vidpipe.spend.prices import PriceTable
from vidpipe.spend.ratelimit import RateLimiter
from vidpipe.spend.scopes import BudgetConfig
from vidpipe.spend.usage import check_usage

# Each round lost means another writer recorded this call or consumed the reservation;
# a job has far fewer concurrent calls than this.
MAX_RECORD_ROUNDS = 50


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

    def reserve_whole(self, job_id: str, amount_usd: Decimal, model: str, *, reservation_id: str,
                      ttl_s: int) -> str:
        """A production's reservation for all its shots (its own id and lifetime). [PRODUCTION]"""
        return self.budgets.reserve(job_id, amount_usd, model, reservation_id=reservation_id,
                                    ttl_s=ttl_s).reservation_id

    def reserve_from(self, parent_reservation_id: str, job_id: str, amount_usd: Decimal, model: str) -> str:
        """A shot's reservation, moved out of its production's (spend/budgets.py ``reserve_from``)."""
        return self.budgets.reserve_from(parent_reservation_id, job_id, amount_usd, model,
                                         ttl_s=self.video_ttl_s).reservation_id

    def record_call(self, call: ProviderCall) -> Decimal:
        cost = self._cost(call)
        entry = LedgerEntry(
            entry_id=entry_id_for(call.job_id, call.call_key), job_id=call.job_id, step=call.step,
            provider=call.provider, model=call.model, call_key=call.call_key, confirmed=call.confirmed,
            input_tokens=call.input_tokens, output_tokens=call.output_tokens, images=call.images,
            clip_seconds=Decimal(str(call.clip_seconds)), latency_ms=call.latency_ms, cost_usd=cost,
            request_id=call.request_id,
        )
        for _ in range(MAX_RECORD_ROUNDS):
            previous = self.ledger.get(call.job_id, call.call_key)
            intent = self.ledger.intent(call.job_id, call.call_key)
            if previous is not None and (previous.confirmed or not call.confirmed):
                if intent is not None:  # an attempt reopened under a recorded key: nothing more to bill
                    self.ledger.close_intent(call.job_id, call.call_key)
                return previous.cost_usd
            delta = cost - (previous.cost_usd if previous else Decimal(0))
            reservation = self.budgets.get(call.job_reservation_id)
            charge, scopes, rose = self.budgets.charge_items(call.job_id, call.model, delta, reservation)
            items = [*self.ledger.entry_items(entry, previous), *charge,
                     *(intent.delete_items(self.ledger.table) if intent else [])]
            try:
                self.ledger.write(items)
            except ClientError as exc:
                reasons = cancellation_reasons(exc)
                if not reasons or not (reasons[0].get("Code") == "ConditionalCheckFailed"
                                       or self.budgets.is_stale(reasons, items)):
                    raise
                continue  # another writer recorded this call or consumed the reservation: read again
            if rose:
                self.budgets.alarm.observe(scopes)
            if call.confirmed and call.expected_prompt_tokens is not None:
                check_usage(call.expected_prompt_tokens, call.input_tokens, call.images, model=call.model,
                            job_id=call.job_id)
            return cost
        raise RuntimeError(f"ledger entry for {call.job_id}/{call.call_key} lost {MAX_RECORD_ROUNDS} races in a row")

    def _cost(self, call: ProviderCall) -> Decimal:
        if call.model in self.prices.video:
            # Without the clip's resolution and fps the dearest rate applies (never under-counts).
            return self.prices.video_cost(call.model, call.clip_seconds, call.resolution, call.fps)
        return self.prices.chat_cost(call.model, call.input_tokens, call.output_tokens)

    def begin_call(self, estimate: ProviderCall) -> None:
        self._cost(estimate)  # an unpriced model fails before the attempt, not when it is swept
        self.ledger.open_intent(replace(estimate, confirmed=False))

    def abandon_call(self, job_id: str, call_key: str) -> None:
        self.ledger.close_intent(job_id, call_key)

    def settle(self, job_id: str, reservation_id: str | None) -> dict:
        """Record the job's leftover intents (unconfirmed, at their estimate), give back
        what is left of the reservation and return the totals (Decimal money; handlers
        make their output JSON-safe). Settling again changes nothing."""
        for intent in self.ledger.intents(job_id):
            self.record_call(intent.call)
        totals = self.ledger.job_totals(job_id)
        if reservation_id:
            self.budgets.settle(reservation_id, totals.cost_usd)
        return totals.model_dump()

    def release(self, reservation_id: str | None) -> None:
        if reservation_id:
            self.budgets.release(reservation_id)

    def acquire(self, provider: str, tokens: int = 0) -> None:
        self.limiter.acquire(provider, tokens, max_wait_s=self.max_wait_s)

    def sweep_intents(self, older_than_s: float) -> int:
        """For the scheduled sweep: record every intent opened more than ``older_than_s``
        ago (its Lambda died mid-call; pass at least the function timeout) as an
        unconfirmed entry at its estimate. Returns how many this call recorded."""
        recorded = 0
        for job_id, call_key in self.ledger.stale_intents(self.ledger.now() - older_than_s):
            intent = self.ledger.intent(job_id, call_key)
            if intent is None:  # its outcome was recorded meanwhile
                continue
            self.record_call(intent.call)
            logger.warning("recorded an abandoned call at its estimate",
                           extra={"job_id": job_id, "call_key": call_key})
            recorded += 1
        return recorded

    def sweep_expired(self) -> int:
        """For the scheduled sweep: release what is left of reservations whose holder died."""
        return self.budgets.sweep_expired()

    def sweep(self, intents_older_than_s: float) -> dict:
        """Intents first, so what they consume of a reservation is not handed back."""
        return {"intents": self.sweep_intents(intents_older_than_s), "reservations": self.sweep_expired()}
