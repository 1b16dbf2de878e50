"""Spend control: prices, the ledger, budgets, the shared rate limit.

Every guarantee here holds across concurrent Lambdas because each one is a
DynamoDB conditional write or transaction, never an in-process lock.
"""

from vidpipe.spend.budgets import Budgets, Reservation, ReservationState
from vidpipe.spend.ledger import Ledger, LedgerEntry, SpendTotals, entry_id_for
from vidpipe.spend.prices import PriceConfigError, PriceTable
from vidpipe.spend.ratelimit import RateLimiter
from vidpipe.spend.scopes import BudgetConfig, ScopeRef
from vidpipe.spend.usage import UsageVerdict, check_usage

__all__ = [
    "BudgetConfig", "Budgets", "Ledger", "LedgerEntry", "PriceConfigError", "PriceTable", "RateLimiter",
    "Reservation", "ReservationState", "ScopeRef", "SpendTotals", "UsageVerdict", "check_usage", "entry_id_for",
]
