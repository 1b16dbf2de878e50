"""Estimate everything a generation job will pay for and reserve it against
every budget before the first paid call: the prompt enhancement (when asked
for: its input plus a full answer) and the clip, in the job's one reservation.
A job that does not fit is refused (BudgetExceeded) before any provider call."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from pydantic import BaseModel

from vidpipe.accounting import Accounting
from vidpipe.generation.enhance import enhancement_tokens
from vidpipe.generation.messages import GenerateJob
from vidpipe.providers.video import billed_seconds

# (model, seconds, resolution, fps) → USD; in production PriceTable.video_cost.
VideoCost = Callable[[str, float, str, int], Decimal]
# (model, input tokens, output tokens) → USD; in production PriceTable.chat_cost.
ChatCost = Callable[[str, int, int], Decimal]


class Reservation(BaseModel):
    reservation_id: str
    estimate_usd: Decimal  # the whole reservation: enhancement + clip
    billed_seconds: float
    enhancement_usd: Decimal = Decimal(0)


def reserve_generation(job_id: str, request: GenerateJob, accounting: Accounting, video_cost: VideoCost,
                       chat_cost: ChatCost, enhance_model: str,
                       parent_reservation_id: str | None = None, routes: list | None = None) -> Reservation:
    """Raises BudgetExceeded (from the accounting) when the estimate does not fit a budget or max_cost_usd.

    A production's shot (``parent_reservation_id`` set) takes no fresh budget: its estimate
    moves out of the production's reservation in one transaction (spend/budgets.py ``reserve_from``)."""
    # [ROUTING] ``routes`` (vidpipe.routing.video_routes): a fallback may land on any of them, so the
    # clip is reserved at the dearest; without routes, the request's own provider and model.
    if not routes:
        from vidpipe.config import get_settings
        from vidpipe.routing import video_routes

        routes = video_routes(request, get_settings())
    candidates = [(r.provider, r.model) for r in routes]
    priced = []
    for provider, model in candidates:
        route_seconds = billed_seconds(provider, model, request.duration_s)
        priced.append((video_cost(model, route_seconds, request.resolution, request.fps), route_seconds, model))
    clip, seconds, model = max(priced, key=lambda p: (p[0], p[1]))
    enhancement = chat_cost(enhance_model, *enhancement_tokens(request)) if request.enhance_prompt else Decimal(0)
    estimate = clip + enhancement
    if parent_reservation_id:
        reservation_id = accounting.reserve_from(parent_reservation_id, job_id, estimate, model)
    else:
        reservation_id = accounting.reserve(job_id, estimate, model, job_limit_usd=request.max_cost_usd)
    return Reservation(reservation_id=reservation_id, estimate_usd=estimate, billed_seconds=seconds,
                       enhancement_usd=enhancement)
