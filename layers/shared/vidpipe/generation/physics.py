"""Typed physics parameters for generated scenes, with their sane ranges.

One table of ranges serves two callers: a job message is *rejected* when a
value falls outside its range (the user asked for something impossible), while
a chat model's suggestion is *clamped* into it (the model is advisory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    unit: str

    def describe(self) -> str:
        return f"{self.low:g}–{self.high:g} {self.unit}".strip()


RANGES: dict[str, Range] = {
    "time_scale": Range(0.1, 0.5, "× real speed"),  # slow motion: 0.25 = four times slower
    "compression": Range(10, 1000, "× (real seconds per video second)"),  # time-lapse
    "hyperlapse_speed": Range(2, 100, "× camera travel speed"),
    "gravity_mps2": Range(0, 30, "m/s²"),
    "elasticity": Range(0, 1, "(coefficient of restitution)"),
    "viscosity_mpas": Range(0.001, 1000, "mPa·s"),
}

# The parameter that only makes sense in one mode.
MODE_PARAMETER = {"slow_motion": "time_scale", "time_lapse": "compression", "hyperlapse": "hyperlapse_speed"}


def _bounded(name: str, description: str):
    bounds = RANGES[name]
    return Field(default=None, ge=bounds.low, le=bounds.high, allow_inf_nan=False,
                 description=f"{description} ({bounds.describe()})")


class Physics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_scale: float | None = _bounded("time_scale", "slow-motion playback speed")
    compression: float | None = _bounded("compression", "time-lapse compression")
    hyperlapse_speed: float | None = _bounded("hyperlapse_speed", "hyperlapse speed-up")
    gravity_mps2: float | None = _bounded("gravity_mps2", "gravity")
    elasticity: float | None = _bounded("elasticity", "elasticity")
    viscosity_mpas: float | None = _bounded("viscosity_mpas", "fluid viscosity")

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler) -> dict[str, float]:
        return {name: value for name, value in handler(self).items() if value is not None}

    def set_values(self) -> dict[str, float]:
        return self.model_dump()


class PhysicsSuggestion(BaseModel):
    """What a chat model may answer: the same names, any number, nothing enforced yet."""

    time_scale: float | None
    compression: float | None
    hyperlapse_speed: float | None
    gravity_mps2: float | None
    elasticity: float | None
    viscosity_mpas: float | None

    @model_validator(mode="before")
    @classmethod
    def _missing_means_unset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {name: data.get(name) for name in RANGES} | data
        return data


def mode_conflicts(mode: str, physics: Physics) -> list[str]:
    """Mode-specific parameters set for another mode (e.g. time_scale in a time-lapse)."""
    return [
        f"physics.{name} applies to mode {owner}, not {mode}"
        for owner, name in MODE_PARAMETER.items()
        if owner != mode and getattr(physics, name) is not None
    ]


def clamp_suggestion(mode: str, suggestion: PhysicsSuggestion) -> tuple[Physics, list[str]]:
    """Clamp a model's suggestion into RANGES; drop non-finite values and other modes' parameters.

    Returns the physics and one note per value changed or dropped.
    """
    values: dict[str, float] = {}
    notes: list[str] = []
    for name, bounds in RANGES.items():
        value = getattr(suggestion, name)
        if value is None:
            continue
        owner = next((m for m, p in MODE_PARAMETER.items() if p == name), mode)
        if owner != mode:
            notes.append(f"{name} dropped: applies to mode {owner}")
        elif not math.isfinite(value):
            notes.append(f"{name} dropped: not a finite number")
        else:
            clamped = min(max(value, bounds.low), bounds.high)
            if clamped != value:
                notes.append(f"{name} {value:g} clamped to {clamped:g} ({bounds.describe()})")
            values[name] = clamped
    return Physics(**values), notes
