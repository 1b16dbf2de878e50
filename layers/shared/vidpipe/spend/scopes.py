"""Which budgets a reservation must fit, and their limits.

    global  / day:<YYYY-MM-DD>   Settings.budget_daily_usd
    global  / month:<YYYY-MM>    Settings.budget_monthly_usd
    model:<model> / day:<date>   the price table's optional daily_budget_usd
    job:<job_id>  / total        the job's own max_cost_usd

Periods are UTC. A scope item's limit is fixed by the first reservation of its
period: a changed setting applies from the next day / month / job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from vidpipe.config import Settings
from vidpipe.spend.prices import PriceTable


class ScopeRef(NamedTuple):
    name: str  # "global" | "model:<model>" | "job:<job_id>"
    period: str  # "day:<date>" | "month:<YYYY-MM>" | "total"

    @property
    def key(self) -> dict:
        return {"pk": {"S": f"BUDGET#{self.name}"}, "sk": {"S": self.period}}

    @property
    def label(self) -> str:
        return f"{self.period} {self.name}"

    @property
    def is_job(self) -> bool:
        return self.name.startswith("job:")


@dataclass(frozen=True)
class Scope:
    ref: ScopeRef
    limit: Decimal


@dataclass(frozen=True)
class BudgetConfig:
    daily_usd: Decimal
    monthly_usd: Decimal
    model_daily_usd: Mapping[str, Decimal] = field(default_factory=dict)
    reservation_ttl_s: int = 900
    alarm_ratio: Decimal = Decimal("0.8")
    alarm_topic_arn: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, prices: PriceTable | None = None) -> BudgetConfig:
        prices = prices or PriceTable.load(settings)
        return cls(daily_usd=settings.budget_daily_usd, monthly_usd=settings.budget_monthly_usd,
                   model_daily_usd=prices.model_daily_budgets(), reservation_ttl_s=settings.reservation_ttl_s,
                   alarm_topic_arn=settings.alarm_topic_arn)

    def scopes(self, now: float, model: str, job_id: str, job_limit: Decimal | None) -> list[Scope]:
        day = datetime.fromtimestamp(now, UTC)
        scopes = [Scope(ScopeRef("global", f"day:{day:%Y-%m-%d}"), self.daily_usd),
                  Scope(ScopeRef("global", f"month:{day:%Y-%m}"), self.monthly_usd)]
        if model in self.model_daily_usd:
            scopes.append(Scope(ScopeRef(f"model:{model}", f"day:{day:%Y-%m-%d}"), self.model_daily_usd[model]))
        if job_limit is not None:
            scopes.append(Scope(ScopeRef(f"job:{job_id}", "total"), Decimal(job_limit)))
        return scopes
