"""The routing table: which models a job uses, by tier, as configuration.

The packaged ``routing.json`` is the default; ``Settings.routing_table_json``
(a JSON document, or the path of one) replaces it. A table names tiers
(``draft``, ``standard``, ``premium``, ...), each with a chat model per purpose
(``analysis``, ``enhancement``, ``storyboard``, ``summary``, and optionally
``analysis_escalation``: the model a chunk whose answer failed validation is
retried on once) and an ordered list of video routes (first preferred, the
next ones are the fallbacks). ``priority_tiers`` maps a job's priority to a
tier when the job names none; ``default_tier`` covers any priority no range
names.

A null model in the table means the deployment's setting (chat: analysis and
summary → ``CHAT_MODEL``, enhancement and storyboard → ``ENHANCE_MODEL``;
video: ``VIDEO_PROVIDER`` / ``VIDEO_MODEL``; ``base_url`` → ``VIDEO_BASE_URL``),
so the packaged ``standard`` tier is what a deployment configured before tiers.

Every model the table names must be priced: an unpriced one fails the load with
a ``RoutingConfigError`` (a ``SettingsError``) naming it, at cold start rather
than at the bill. The table is read once per process (per configuration).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vidpipe.config import Settings, SettingsError

if TYPE_CHECKING:
    from vidpipe.generation.messages import GenerateJob

PURPOSES = ("analysis", "enhancement", "storyboard", "summary")
ESCALATION = "analysis_escalation"
VIDEO_PROVIDERS = ("generic", "openai", "bedrock")
# Which deployment setting a null chat model stands for.
_CHAT_DEFAULTS = {"analysis": "chat_model", "summary": "chat_model", ESCALATION: None,
                  "enhancement": "enhance_model", "storyboard": "enhance_model"}
_RANGE = re.compile(r"^(\d)(?:-(\d))?$")


class RoutingConfigError(SettingsError):
    """The routing table is malformed or names a model the price table does not price."""

    def __init__(self, problem: str):
        super().__init__([f"ROUTING_TABLE_JSON: {problem}"])


class VideoRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    model: str
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+")  # None → Settings.video_base_url
    max_resolution: str | None = Field(default=None, pattern=r"^\d+x\d+$")

    def url(self, settings: Settings) -> str:
        return self.base_url or settings.video_base_url

    def fits(self, resolution: str) -> bool:
        """A route whose max_resolution is smaller than the request cannot serve it."""
        if self.max_resolution is None:
            return True
        want = sorted(map(int, resolution.split("x")), reverse=True)
        limit = sorted(map(int, self.max_resolution.split("x")), reverse=True)
        return want[0] <= limit[0] and want[1] <= limit[1]

    def label(self) -> str:
        return f"{self.provider}/{self.model}" + (f" at {self.base_url}" if self.base_url else "")


class TierRoutes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chat: dict[str, str]  # purpose → model (and optionally analysis_escalation)
    video: list[VideoRoute] = Field(min_length=1)  # ordered: first is preferred

    @model_validator(mode="after")
    def _purposes(self) -> TierRoutes:
        unknown = set(self.chat) - set(PURPOSES) - {ESCALATION}
        if unknown:
            raise ValueError(f"unknown chat purposes {sorted(unknown)}; known: {[*PURPOSES, ESCALATION]}")
        return self


class RoutingTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: dict[str, TierRoutes] = Field(min_length=1)
    default_tier: str
    priority_tiers: dict[str, str] = Field(default_factory=dict)  # "0-3" → tier

    @model_validator(mode="after")
    def _consistent(self) -> RoutingTable:
        known = sorted(self.tiers)
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not a tier; tiers: {known}")
        for span, tier in self.priority_tiers.items():
            _span(span)
            if tier not in self.tiers:
                raise ValueError(f"priority_tiers[{span!r}] names unknown tier {tier!r}; tiers: {known}")
        return self

    def tier_for_priority(self, priority: int) -> str:
        for span, tier in self.priority_tiers.items():
            low, high = _span(span)
            if low <= priority <= high:
                return tier
        return self.default_tier

    def tier(self, name: str | None) -> TierRoutes:
        return self.tiers[name or self.default_tier]

    def models(self) -> tuple[set[str], set[str]]:
        chat = {model for tier in self.tiers.values() for model in tier.chat.values()}
        video = {route.model for tier in self.tiers.values() for route in tier.video}
        return chat, video


def _span(span: str) -> tuple[int, int]:
    match = _RANGE.match(span.strip())
    if not match or int(match[2] or match[1]) < int(match[1]):
        raise ValueError(f"priority range {span!r} is not 'LOW-HIGH' within 0-9")
    return int(match[1]), int(match[2] or match[1])


# ------------------------------------------------------------------ loading


@functools.cache  # read once per process
def _packaged_text() -> str:
    return resources.files("vidpipe").joinpath("routing.json").read_text()


def routing_table(settings: Settings) -> RoutingTable:
    """The table in force: ``settings.routing_table_json`` or the packaged one, with
    the deployment's settings filled in for null models and every model checked
    against the price table."""
    return _load(settings.routing_table_json.strip(), settings.price_table_json, settings.chat_model,
                 settings.enhance_model, settings.video_provider, settings.video_model)


@functools.lru_cache(maxsize=8)
def _load(source: str, price_table_json: str, chat_model: str, enhance_model: str, video_provider: str,
          video_model: str) -> RoutingTable:
    if source:
        try:
            text = source if source.startswith("{") else Path(source).read_text()
        except OSError as exc:
            raise RoutingConfigError(f"cannot read the routing table file: {exc}") from None
    else:
        text = _packaged_text()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RoutingConfigError(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RoutingConfigError("the routing table must be a JSON object")
    defaults = {"chat_model": chat_model, "enhance_model": enhance_model}
    try:
        for tier in (document.get("tiers") or {}).values():
            if not isinstance(tier, dict):
                continue
            chat = tier.get("chat") or {}
            for purpose in list(chat):
                if chat[purpose] is None:
                    setting = _CHAT_DEFAULTS.get(purpose)
                    if setting is None:
                        del chat[purpose]
                    else:
                        chat[purpose] = defaults[setting]
            for purpose, setting in _CHAT_DEFAULTS.items():
                if setting is not None:
                    chat.setdefault(purpose, defaults[setting])
            tier["chat"] = chat
            for route in tier.get("video") or []:
                if isinstance(route, dict):
                    route["provider"] = route.get("provider") or video_provider
                    route["model"] = route.get("model") or video_model
        table = RoutingTable.model_validate({k: v for k, v in document.items() if not k.startswith("_")})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'table'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise RoutingConfigError(f"invalid routing table: {problems}") from None
    _check_priced(table, price_table_json, chat_model, enhance_model, video_model)
    return table


def _check_priced(table: RoutingTable, price_table_json: str, chat_model: str, enhance_model: str,
                  video_model: str) -> None:
    from vidpipe.spend.prices import PriceConfigError, PriceTable

    try:
        # model_construct: these four values only (no environment read, no Lambda checks)
        prices = PriceTable.load(Settings.model_construct(price_table_json=price_table_json, chat_model=chat_model,
                                                          enhance_model=enhance_model, video_model=video_model))
    except PriceConfigError as exc:
        raise SettingsError([f"PRICE_TABLE_JSON: {exc}"]) from None
    problems = []
    for name, tier in table.tiers.items():
        problems += [f"tier {name!r} {purpose} model {model!r} has no price"
                     for purpose, model in tier.chat.items() if model not in prices.chat]
        problems += [f"tier {name!r} video route {i} model {route.model!r} has no price"
                     for i, route in enumerate(tier.video) if route.model not in prices.video]
        problems += [f"tier {name!r} video route {i} provider {route.provider!r} is unknown; one of "
                     f"{', '.join(VIDEO_PROVIDERS)}" for i, route in enumerate(tier.video)
                     if route.provider not in VIDEO_PROVIDERS]
    if problems:
        raise RoutingConfigError("; ".join(problems) + " (price it in PRICE_TABLE_JSON or change the table)")


# ------------------------------------------------------------------ choosing


def video_routes(request: GenerateJob, settings: Settings) -> list[VideoRoute]:
    """The job's routes, in order. Provider and model both given: that one route, pinned
    (at VIDEO_BASE_URL). Otherwise the tier's list, without routes whose max_resolution
    is below the request's (all of them if none fits: the provider says no itself)."""
    if request.provider and request.model:
        return [VideoRoute(provider=request.provider, model=request.model)]
    routes = routing_table(settings).tier(request.tier).video
    fitting = [route for route in routes if route.fits(request.resolution)]
    return fitting or list(routes)


def chat_model(tier: str | None, purpose: str, settings: Settings) -> str:
    """The chat model for a purpose. No tier: the deployment's setting, as before tiers
    (analysis, summary: CHAT_MODEL; enhancement, storyboard: ENHANCE_MODEL)."""
    if purpose not in _CHAT_DEFAULTS:
        raise ValueError(f"unknown chat purpose {purpose!r}; one of {list(_CHAT_DEFAULTS)}")
    if tier is None:
        setting = _CHAT_DEFAULTS[purpose]
        return getattr(settings, setting or "chat_model")
    chat = routing_table(settings).tier(tier).chat
    return chat.get(purpose) or getattr(settings, _CHAT_DEFAULTS[purpose] or "chat_model")


def escalation_model(tier: str | None, settings: Settings) -> str | None:
    """The model a chunk is retried on once when its answer failed validation (None: no escalation)."""
    if tier is None:
        return None
    return routing_table(settings).tier(tier).chat.get(ESCALATION)


def known_tiers(settings: Settings) -> list[str]:
    return sorted(routing_table(settings).tiers)
