"""The storyboard: one structured chat call turns a script into scenes → shots.

The answer must validate against ``StoryboardAnswer``'s JSON schema (sent as
``response_format`` json_schema named "storyboard"); it is then clamped to the
job's bounds — shot count (min_shots..max_shots), each shot's duration
(MIN_SHOT_S..MAX_SHOT_S, and the total towards target_duration_s), physics
into their ranges, characters to the ones the job names — and every clamp is
reported in ``Storyboard.clamps``. The call is reserved before it is made
(``storyboard_estimate``) and metered like the prompt enhancement
(``ChatCallMeter``: an intent per HTTP attempt, then an entry or nothing).

An approver may send back an edited storyboard: ``validate_edited`` checks it
against the same schema and bounds (a storyboard is never trusted as sent).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidpipe.accounting import Accounting, ChatCallMeter
from vidpipe.errors import InputRejected, ProviderError
from vidpipe.generation.messages import MAX_PROMPT_CHARS, ProduceJob
from vidpipe.generation.physics import Physics, PhysicsSuggestion, clamp_suggestion
from vidpipe.providers.chat import json_schema_format
from vidpipe.providers.image_tokens import family_of, text_tokens

MIN_SHOT_S, MAX_SHOT_S = 1.0, 10.0
DEFAULT_SHOT_S = 4.0
MAX_STORYBOARD_TOKENS = 8000  # the answer cap: 60 shots of a few lines each
Mode = Literal["normal", "slow_motion", "time_lapse", "hyperlapse"]


class ShotAnswer(BaseModel):
    duration_s: float
    camera_angle: str
    camera_movement: str
    action: str
    emotional_tone: str
    mode: Mode
    physics: PhysicsSuggestion
    characters: list[str]
    on_screen_text: str | None


class SceneAnswer(BaseModel):
    heading: str  # not "title": providers.chat.strict_schema drops keys named "title", properties included
    location: str
    shots: list[ShotAnswer]


class StoryboardAnswer(BaseModel):
    """What the chat model must answer (strict JSON schema "storyboard")."""

    episode_title: str
    scenes: list[SceneAnswer]


class Shot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int  # 0-based, storyboard order
    scene: int  # 0-based scene index
    duration_s: float = Field(ge=MIN_SHOT_S, le=MAX_SHOT_S)
    camera_angle: str = Field(max_length=200)
    camera_movement: str = Field(max_length=200)
    action: str = Field(min_length=1, max_length=1000)
    emotional_tone: str = Field(max_length=200)
    mode: Mode = "normal"
    physics: Physics = Physics()
    characters: list[str] = Field(default_factory=list)
    on_screen_text: str | None = Field(default=None, max_length=200)


class Scene(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=200)
    location: str = Field(default="", max_length=200)


class Storyboard(BaseModel):
    """The clamped, validated storyboard (storyboard.json)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=200)
    scenes: list[Scene]
    shots: list[Shot] = Field(min_length=1)
    clamps: list[str] = Field(default_factory=list)  # every change made to the answer, readable

    @property
    def total_s(self) -> float:
        return round(sum(shot.duration_s for shot in self.shots), 3)


def instructions(job: ProduceJob, script: str) -> list[dict]:
    target = job.target_duration_s or DEFAULT_SHOT_S * (job.min_shots + job.max_shots) / 2
    system = (
        "You are a storyboard artist for a text-to-video pipeline. Turn the script into scenes and shots. "
        "Answer with JSON only, following the schema: scenes in script order, each with its shots; every shot "
        "has duration_s, camera_angle, camera_movement, action (one concrete, visual sentence a video model can "
        "render, naming who is in frame and what moves), emotional_tone, mode (normal, slow_motion, time_lapse, "
        "hyperlapse), physics (numbers or null), the characters present (names from the list only) and "
        f"on_screen_text (or null). Between {job.min_shots} and {job.max_shots} shots in all, each "
        f"{MIN_SHOT_S:g}–{MAX_SHOT_S:g} s, about {target:g} s in total."
    )
    user = {"title": job.title, "style": job.style, "script": script,
            "shots": {"min": job.min_shots, "max": job.max_shots}, "target_duration_s": target,
            "characters": [{"name": c.name, "description": c.description} for c in job.characters],
            "default_mode": job.defaults.mode}
    return [{"role": "system", "content": system}, {"role": "user", "content": json.dumps(user)}]


def storyboard_tokens(job: ProduceJob, script: str) -> tuple[int, int]:
    """(input, output) tokens the storyboard call can bill at most."""
    return sum(text_tokens(m["content"]) for m in instructions(job, script)), MAX_STORYBOARD_TOKENS


def make_storyboard(job_id: str, job: ProduceJob, script: str, chat, accounting: Accounting,
                    model: str) -> Storyboard:
    """One metered chat call; raises ProviderError when the answer is not a storyboard."""
    provider = str(family_of(model))
    messages = instructions(job, script)
    prompt_tokens, max_tokens = storyboard_tokens(job, script)
    meter = ChatCallMeter(accounting, job_id, "storyboard", provider, model, input_tokens=prompt_tokens,
                          max_tokens=max_tokens)
    result = chat.complete(model, messages, json_schema_format("storyboard", StoryboardAnswer),
                           max_tokens=max_tokens, meter=meter,
                           on_attempt=lambda _attempt: accounting.acquire(provider, prompt_tokens + max_tokens))
    try:
        answer = StoryboardAnswer.model_validate_json(result.content)
    except ValidationError as exc:
        raise ProviderError(f"the storyboard answer does not follow its schema ({_first(exc)})",
                            malformed=True) from None
    return clamp(answer, job)


def validate_edited(edited: dict, job: ProduceJob) -> Storyboard:
    """An approver's storyboard: the same schema and bounds (InputRejected naming the problem).

    Accepts a stored storyboard.json (``shots`` flat, with ``scene`` indices) as edited by hand."""
    try:
        board = Storyboard.model_validate(edited)
    except ValidationError as exc:
        raise InputRejected(f"the edited storyboard is invalid: {_first(exc)}") from None
    problems = []
    if not job.min_shots <= len(board.shots) <= job.max_shots:
        problems.append(f"{len(board.shots)} shots, outside {job.min_shots}–{job.max_shots}")
    names = {c.name for c in job.characters}
    for shot in board.shots:
        unknown = sorted(set(shot.characters) - names)
        if unknown:
            problems.append(f"shot {shot.index + 1}: unknown characters {', '.join(unknown)}")
        if not 0 <= shot.scene < len(board.scenes):
            problems.append(f"shot {shot.index + 1}: scene {shot.scene} does not exist")
    if problems:
        raise InputRejected("the edited storyboard is invalid: " + "; ".join(problems))
    # Renumber in the order given: the order is the episode's.
    shots = [shot.model_copy(update={"index": i}) for i, shot in enumerate(board.shots)]
    return board.model_copy(update={"shots": shots, "clamps": [*board.clamps, "edited by the approver"]})


def clamp(answer: StoryboardAnswer, job: ProduceJob) -> Storyboard:
    clamps: list[str] = []
    names = {c.name.casefold(): c.name for c in job.characters}
    flat: list[tuple[int, ShotAnswer]] = [(s, shot) for s, scene in enumerate(answer.scenes) for shot in scene.shots]
    if not flat:
        raise ProviderError("the storyboard answer has no shots", malformed=True)
    if len(flat) > job.max_shots:
        clamps.append(f"{len(flat)} shots cut to max_shots {job.max_shots} (the last ones dropped)")
        flat = flat[:job.max_shots]
    elif len(flat) < job.min_shots:
        flat = _split_to(flat, job.min_shots, clamps)
    shots = []
    for index, (scene, answer_shot) in enumerate(flat):
        number = index + 1
        duration = answer_shot.duration_s
        if not math.isfinite(duration):
            duration = DEFAULT_SHOT_S
            clamps.append(f"shot {number}: duration not a number, {DEFAULT_SHOT_S:g} s used")
        elif not MIN_SHOT_S <= duration <= MAX_SHOT_S:
            fixed = min(max(duration, MIN_SHOT_S), MAX_SHOT_S)
            clamps.append(f"shot {number}: duration {duration:g} s clamped to {fixed:g} s "
                          f"({MIN_SHOT_S:g}–{MAX_SHOT_S:g} s)")
            duration = fixed
        physics, notes = clamp_suggestion(answer_shot.mode, answer_shot.physics)
        clamps += [f"shot {number}: {note}" for note in notes]
        if not physics.set_values() and answer_shot.mode == job.defaults.mode:
            physics = job.defaults.physics
        present = []
        for name in answer_shot.characters:
            known = names.get(name.strip().casefold())
            if known is None:
                clamps.append(f"shot {number}: character {name[:64]!r} is not in the job's list (dropped)")
            elif known not in present:
                present.append(known)
        action = " ".join(answer_shot.action.split())[:1000] or f"shot {number}"
        text = (answer_shot.on_screen_text or "").strip()[:200] or None
        shots.append(Shot(index=index, scene=scene, duration_s=round(duration, 3),
                          camera_angle=answer_shot.camera_angle.strip()[:200],
                          camera_movement=answer_shot.camera_movement.strip()[:200], action=action,
                          emotional_tone=answer_shot.emotional_tone.strip()[:200], mode=answer_shot.mode,
                          physics=physics, characters=present, on_screen_text=text))
    if job.target_duration_s:
        shots = _fit_total(shots, job.target_duration_s, clamps)
    scenes = [Scene(title=scene.heading.strip()[:200] or f"Scene {i + 1}", location=scene.location.strip()[:200])
              for i, scene in enumerate(answer.scenes)]
    return Storyboard(title=(answer.episode_title.strip() or job.title)[:200], scenes=scenes, shots=shots, clamps=clamps)


def _split_to(flat: list[tuple[int, ShotAnswer]], count: int, clamps: list[str]) -> list[tuple[int, ShotAnswer]]:
    """Too few shots: split the longest in two (each half keeps the action) until there are enough."""
    before = len(flat)
    flat = list(flat)
    while len(flat) < count:
        longest = max(range(len(flat)), key=lambda i: flat[i][1].duration_s)
        scene, shot = flat[longest]
        half = shot.model_copy(update={"duration_s": shot.duration_s / 2})
        second = half.model_copy(update={"action": f"{shot.action} (continued)"})
        flat[longest:longest + 1] = [(scene, half), (scene, second)]
    clamps.append(f"{before} shots split to min_shots {count} (the longest shots halved)")
    return flat


def _fit_total(shots: list[Shot], target: float, clamps: list[str]) -> list[Shot]:
    """Scale durations towards the target total (within each shot's bounds) when off by more than 10 %."""
    total = sum(s.duration_s for s in shots)
    if abs(total - target) <= 0.1 * target:
        return shots
    factor = target / total
    fitted = [s.model_copy(update={"duration_s": round(min(max(s.duration_s * factor, MIN_SHOT_S), MAX_SHOT_S), 3)})
              for s in shots]
    clamps.append(f"total duration {total:g} s scaled towards target_duration_s {target:g} s "
                  f"(now {sum(s.duration_s for s in fitted):g} s)")
    return fitted


def shot_prompt(shot: Shot, board: Storyboard, job: ProduceJob) -> str:
    """The generation prompt of one shot: its action framed by camera, tone, style and who is in it."""
    characters = {c.name: c for c in job.characters}
    parts = [shot.action if shot.action.endswith((".", "!", "?")) else shot.action + "."]
    camera = ", ".join(p for p in (shot.camera_angle, shot.camera_movement) if p)
    if camera:
        parts.append(f"Camera: {camera}.")
    if shot.emotional_tone:
        parts.append(f"Tone: {shot.emotional_tone}.")
    for name in shot.characters:
        if characters[name].description:
            parts.append(f"{name}: {characters[name].description.rstrip('.')}.")
    scene = board.scenes[shot.scene] if shot.scene < len(board.scenes) else None
    if scene and scene.location:
        parts.append(f"Setting: {scene.location}.")
    if job.style:
        parts.append(f"Style: {job.style.rstrip('.')}.")
    if shot.on_screen_text:
        parts.append(f"On-screen text: {shot.on_screen_text!r}.")
    return " ".join(parts)[:MAX_PROMPT_CHARS]


def markdown(board: Storyboard, job_id: str) -> str:
    lines = [f"# {board.title}", "", f"Production `{job_id}`: {len(board.shots)} shots, {board.total_s:g} s.", ""]
    for s, scene in enumerate(board.scenes):
        shots = [shot for shot in board.shots if shot.scene == s]
        if not shots:
            continue
        lines += [f"## Scene {s + 1}: {scene.title}" + (f" ({scene.location})" if scene.location else ""), "",
                  "| # | s | camera | action | tone | mode | characters | text |",
                  "|---|---|--------|--------|------|------|------------|------|"]
        for shot in shots:
            cells = [str(shot.index + 1), f"{shot.duration_s:g}", f"{shot.camera_angle}, {shot.camera_movement}",
                     shot.action, shot.emotional_tone, shot.mode, ", ".join(shot.characters),
                     shot.on_screen_text or ""]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    if board.clamps:
        lines += ["## Clamps", "", *[f"- {c}" for c in board.clamps], ""]
    return "\n".join(lines)


def _first(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "answer"
    return f"{where}: {problem['msg']}"


ScriptReader = Callable[[str, str], str]
