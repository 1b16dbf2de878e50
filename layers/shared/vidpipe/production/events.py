"""The events the Production state machine hands its functions."""

from __future__ import annotations

from pydantic import BaseModel

from vidpipe.errors import InputRejected
from vidpipe.generation.messages import ProduceJob
from vidpipe.production.storyboard import Storyboard


class ProductionEvent(BaseModel):
    job_id: str
    request: ProduceJob



class StoryboardEvent(ProductionEvent):
    reservation: dict  # ReserveProduction's "storyboard" answer: reservation_id, estimate_usd, model


class ApprovalEvent(ProductionEvent):
    token: str


class ReserveEvent(ProductionEvent):
    storyboard: Storyboard
    storyboard_usd: str = "0"
    approval: dict | None = None  # SendTaskSuccess output: {"approved": true, "storyboard": {...} | null}


class CollectEvent(ProductionEvent):
    storyboard: Storyboard
    shot_ids: list[str]


class FinalizeEvent(BaseModel):
    job_id: str
    outcome: str  # SUCCEEDED | FAILED
    assembled: dict | None = None
    collected: dict | None = None
    error: dict | None = None


def parse(model, event: dict, settings):
    from pydantic import ValidationError

    try:
        return model.model_validate(event, context={"settings": settings})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors()[:5])
        raise InputRejected(f"invalid {model.__name__}: {problems}") from None
