"""Estimate a clip's cost and reserve it against every budget before submitting."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from pydantic import BaseModel

from vidpipe.accounting import Accounting
from vidpipe.generation.messages import GenerateJob
from vidpipe.providers.video import billed_seconds

# (model, seconds, resolution, fps) → USD; in production PriceTable.video_cost.
VideoCost = Callable[[str, float, str, int], Decimal]


class Reservation(BaseModel):
    reservation_id: str
    estimate_usd: Decimal
    billed_seconds: float


def reserve_generation(job_id: str, request: GenerateJob, accounting: Accounting, video_cost: VideoCost) -> Reservation:
    """Raises BudgetExceeded (from the accounting) when the estimate does not fit a budget or max_cost_usd."""
    seconds = billed_seconds(request.provider, request.model, request.duration_s)
    estimate = video_cost(request.model, seconds, request.resolution, request.fps)
    reservation_id = accounting.reserve(job_id, estimate, request.model, job_limit_usd=request.max_cost_usd)
    return Reservation(reservation_id=reservation_id, estimate_usd=estimate, billed_seconds=seconds)
