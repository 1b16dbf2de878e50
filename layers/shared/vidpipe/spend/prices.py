"""The price table: what a provider call costs, in USD, as configuration.

The packaged ``prices.json`` is the default; ``Settings.price_table_json`` (a
JSON document, or the path of one) overrides it model by model, so a gateway
alias or a negotiated price is one entry, not a code change. Every configured
model must have a price: ``PriceTable.load(settings)`` refuses an unknown
``chat_model`` / ``enhance_model`` / ``video_model`` at start-up, and a cost is
never silently zero.

Costs are computed exactly in Decimal and rounded once per call, half up, to
``COST_QUANTUM`` = 1e-6 USD (a micro-dollar), and every sum of them is exact.
A micro-dollar is below the cost of any real call (10 tokens at $0.28/MTok is
2.8 µ$), and keeps every stored number in plain notation: finer quanta make
DynamoDB ADD results like "0E-8", which moto's arithmetic cannot parse.
"""

from __future__ import annotations

import functools
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidpipe.config import Settings

COST_QUANTUM = Decimal("0.000001")
_PER_MTOK = Decimal(1_000_000)
_RESOLUTION = re.compile(r"^(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?$")


class PriceConfigError(ValueError):
    """The price table is malformed or lacks a model the configuration uses."""


def quantize_usd(amount: Decimal) -> Decimal:
    return amount.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def _video_key(resolution: str, fps: object | None = None) -> str:
    """'720x1280' and '1280x720@30.0' → '1280x720', '1280x720@30'."""
    match = _RESOLUTION.match(resolution.strip().lower())
    if not match:
        raise PriceConfigError(f"resolution {resolution!r} is not WIDTHxHEIGHT[@FPS]")
    long_side, short_side = sorted((int(match[1]), int(match[2])), reverse=True)
    rate = match[3] if fps is None else fps
    key = f"{long_side}x{short_side}"
    return key if rate is None else f"{key}@{Decimal(str(rate)).normalize():f}"


class _Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    daily_budget_usd: Decimal | None = Field(default=None, gt=0)


class ChatPrice(_Price):
    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class VideoPrice(_Price):
    default_per_second: Decimal = Field(ge=0)
    per_second: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("per_second")
    @classmethod
    def _normalise_keys(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        if any(price < 0 for price in value.values()):
            raise ValueError("prices must not be negative")
        return {_video_key(key): price for key, price in value.items()}

    def rate(self, resolution: str | None, fps: object | None) -> Decimal:
        """The rate for WIDTHxHEIGHT at fps; the dearest one when the resolution is
        unknown, so an under-described call is never under-counted."""
        if resolution is None:
            return max([self.default_per_second, *self.per_second.values()])
        exact, any_fps = _video_key(resolution, fps), _video_key(resolution)
        return self.per_second.get(exact, self.per_second.get(any_fps, self.default_per_second))


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True)

    chat: dict[str, ChatPrice] = Field(default_factory=dict)
    video: dict[str, VideoPrice] = Field(default_factory=dict)

    @classmethod
    @functools.cache  # read once per process: every Settings-based load starts from it
    def packaged(cls) -> PriceTable:
        return cls.from_json(resources.files("vidpipe.spend").joinpath("prices.json").read_text())

    @classmethod
    def from_json(cls, text: str) -> PriceTable:
        try:
            return cls.model_validate(_without_comments(json.loads(text)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise PriceConfigError(f"invalid price table: {exc}") from exc

    @classmethod
    def load(cls, settings: Settings) -> PriceTable:
        """The packaged table overridden by ``settings.price_table_json``, with the
        configured models checked (a typo fails the cold start, not the bill)."""
        table = cls.packaged()
        source = settings.price_table_json.strip()
        if source:
            try:
                text = source if source.startswith("{") else Path(source).read_text()
            except OSError as exc:
                raise PriceConfigError(f"cannot read PRICE_TABLE_JSON file: {exc}") from exc
            table = table.overridden_by(cls.from_json(text))
        table.validate_models(chat=(settings.chat_model, settings.enhance_model), video=(settings.video_model,))
        return table

    def overridden_by(self, other: PriceTable) -> PriceTable:
        return PriceTable(chat={**self.chat, **other.chat}, video={**self.video, **other.video})

    def validate_models(self, chat: tuple[str, ...] = (), video: tuple[str, ...] = ()) -> None:
        unknown = [f"chat model {m!r}" for m in chat if m not in self.chat]
        unknown += [f"video model {m!r}" for m in video if m not in self.video]
        if unknown:
            raise PriceConfigError(
                f"no price for {', '.join(unknown)}; known chat models: {sorted(self.chat)}, "
                f"video models: {sorted(self.video)} (add them to PRICE_TABLE_JSON)")

    def chat_cost(self, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts must not be negative")
        price = self._lookup(self.chat, "chat", model)
        return quantize_usd((input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / _PER_MTOK)

    def video_cost(self, model: str, seconds: float | Decimal, resolution: str | None = None,
                   fps: float | int | None = None) -> Decimal:
        if seconds < 0:
            raise ValueError("clip seconds must not be negative")
        price = self._lookup(self.video, "video", model)
        return quantize_usd(Decimal(str(seconds)) * price.rate(resolution, fps))

    def model_daily_budgets(self) -> dict[str, Decimal]:
        prices: dict[str, _Price] = {**self.chat, **self.video}
        return {model: p.daily_budget_usd for model, p in prices.items() if p.daily_budget_usd is not None}

    @staticmethod
    def _lookup(prices: dict, kind: str, model: str):
        try:
            return prices[model]
        except KeyError:
            raise PriceConfigError(f"no price for {kind} model {model!r}") from None


def _without_comments(document: dict) -> dict:
    return {key: value for key, value in document.items() if not key.startswith("_")}
