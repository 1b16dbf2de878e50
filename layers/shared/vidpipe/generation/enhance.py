"""Prompt enhancement: a cheap chat model rewrites the prompt into a
physics-aware scene description (initial state, forces, materials, temporal
changes) with numeric parameters, which are clamped into sane ranges.

The enhancement is advisory: an answer that is not the JSON asked for falls
back to the original prompt, and the reason is returned so the job records it.
Parameters the user set in the message always win over the model's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidpipe.accounting import Accounting, ChatCallMeter
from vidpipe.errors import ProviderError
from vidpipe.generation.messages import MAX_PROMPT_CHARS, GenerateJob
from vidpipe.generation.physics import RANGES, Physics, PhysicsSuggestion, clamp_suggestion
from vidpipe.providers.chat import CallMeter, ChatResult, json_schema_format
from vidpipe.providers.image_tokens import family_of, text_tokens

MAX_ANSWER_TOKENS = 1000

MODE_GUIDANCE = {
    "normal": "Real-time playback.",
    "slow_motion": "Slow motion: set time_scale, the playback speed as a fraction of real time.",
    "time_lapse": "Time-lapse: set compression, real seconds elapsed per second of video.",
    "hyperlapse": "Hyperlapse: set hyperlapse_speed, how many times faster the camera travels than walking pace.",
}


class SceneDescription(BaseModel):
    initial_state: str
    forces: list[str]
    materials: list[str]
    temporal_changes: list[str]


class EnhancerAnswer(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    scene: SceneDescription
    physics: PhysicsSuggestion


class Enhancement(BaseModel):
    """What the generation uses: the final prompt and physics, and how they were reached."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    physics: Physics = Physics()
    enhanced: bool = False
    scene: SceneDescription | None = None
    notes: list[str] = Field(default_factory=list)  # parameters clamped or dropped
    fallback_reason: str | None = None


class ChatCompleter(Protocol):
    def complete(self, model: str, messages: list[dict], response_format: dict | None = None, *,
                 max_tokens: int | None = None, on_attempt: Callable[[int], None] | None = None,
                 meter: CallMeter | None = None) -> ChatResult: ...


def instructions(request: GenerateJob) -> list[dict]:
    ranges = "; ".join(f"{name}: {bounds.describe()}" for name, bounds in RANGES.items())
    system = (
        "You turn a video prompt into a physically plausible scene for a text-to-video model. "
        "Answer with JSON only: prompt (the rewritten prompt, one paragraph, concrete and visual, "
        "stating the motion and timing), scene {initial_state, forces, materials, temporal_changes} "
        "and physics (numbers; null when not relevant). "
        f"Parameter ranges: {ranges}. {MODE_GUIDANCE[request.mode]}"
    )
    user = {"prompt": request.prompt, "mode": request.mode, "duration_s": request.duration_s,
            "fixed_physics": request.physics.set_values()}
    return [{"role": "system", "content": system}, {"role": "user", "content": json.dumps(user)}]


def enhancement_tokens(request: GenerateJob) -> tuple[int, int]:
    """(input, output) tokens an enhancement can bill at most: the prompt's text estimate and
    the answer cap. What a reservation must cover, and what an unreadable answer is recorded at."""
    return sum(text_tokens(m["content"]) for m in instructions(request)), MAX_ANSWER_TOKENS


def enhance_prompt(job_id: str, request: GenerateJob, chat: ChatCompleter, accounting: Accounting,
                   model: str) -> Enhancement:
    """Ask ``model`` for the scene; fall back to the original prompt if the answer is malformed.

    Every HTTP attempt is metered into the ledger under its own client request id:
    an answer we could not use was billed all the same (at the provider's usage,
    or at our estimate, unconfirmed, when its body was unreadable). A provider
    that fails outright (ProviderError / ProviderRetryable) propagates: the state
    machine retries transient failures and then falls back itself.
    """
    provider = str(family_of(model))  # the rate bucket and ledger name the analysis flow uses too
    messages = instructions(request)
    prompt_tokens, max_tokens = enhancement_tokens(request)
    meter = ChatCallMeter(accounting, job_id, "enhance", provider, model, input_tokens=prompt_tokens,
                          max_tokens=max_tokens)
    try:
        result = chat.complete(model, messages, json_schema_format("scene", EnhancerAnswer),
                               max_tokens=max_tokens, meter=meter,
                               on_attempt=lambda _attempt: accounting.acquire(provider, prompt_tokens + max_tokens))
    except ProviderError as exc:
        if not exc.details.get("malformed"):
            raise
        return fallback(request, f"the enhancement answer was malformed ({exc.reason})")
    try:
        answer = EnhancerAnswer.model_validate_json(result.content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "answer"
        return fallback(request, f"the enhancement answer was malformed ({where}: {problem['msg']})")
    suggested, notes = clamp_suggestion(request.mode, answer.physics)
    # What the user asked for explicitly is not the model's to change.
    physics = Physics(**{**suggested.set_values(), **request.physics.set_values()})
    return Enhancement(prompt=answer.prompt, physics=physics, enhanced=True, scene=answer.scene,
                       notes=notes)


def fallback(request: GenerateJob, reason: str) -> Enhancement:
    return Enhancement(prompt=request.prompt, physics=request.physics, fallback_reason=f"{reason}; "
                       "the original prompt was used")
