"""Answers to a ``storyboard`` structured-output request (response_format
json_schema named "storyboard"), built from the script's own sentences.

What a model would do, deterministically: the script splits into scenes (blank
lines, or "Scene …" / "INT." / "EXT." headings), each scene into sentences;
the shot count is the sentence count brought within the requested bounds
(sentences grouped, or the longest scenes covered from more camera angles),
and every shot's action is its sentences, framed by a camera angle that
changes from shot to shot, so no two shots share a prompt and the emulated
clips differ visibly. Characters are the requested names a shot's text
mentions. Every property the schema asks for is present (unknown ones null).

The request's user message is the JSON the caller sent ({"script", "shots":
{"min", "max"}, "target_duration_s", "characters": [{"name"}], "default_mode"});
plain text is taken as the script itself. No vidpipe import (an independent oracle).
"""

from __future__ import annotations

import hashlib
import json
import re

ANGLES = ("wide establishing shot", "medium shot", "close-up", "over-the-shoulder shot", "low angle",
          "high angle", "extreme close-up", "tracking side view")
MOVES = ("static", "slow push in", "pan left", "dolly out", "handheld follow", "tilt up", "crane down", "orbit")
TONES = ("calm", "warm", "tense", "hopeful", "melancholic", "playful", "determined", "quiet")
_HEADING = re.compile(r"^\s*(scene\b[^\n]*|int\.[^\n]*|ext\.[^\n]*)$", re.IGNORECASE | re.MULTILINE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def storyboard_answer(user_text: str, schema: dict) -> dict:
    request = _request(user_text)
    script = str(request.get("script") or "")
    bounds = request.get("shots") or {}
    low, high = int(bounds.get("min") or 1), int(bounds.get("max") or 60)
    target = float(request.get("target_duration_s") or 4.0 * (low + high) / 2)
    names = [str(c.get("name")) for c in request.get("characters") or [] if isinstance(c, dict) and c.get("name")]
    mode = request.get("default_mode") or "normal"
    scenes = _scenes(script)
    flat = [(s, sentence) for s, (_, sentences) in enumerate(scenes) for sentence in sentences]
    if not flat:
        flat, scenes = [(0, "An empty stage.")], [("Scene 1", ["An empty stage."])]
    count = min(max(len(flat), low), high)
    groups: list[tuple[int, str]] = []
    if len(flat) >= count:  # group neighbouring sentences
        for i in range(count):
            part = flat[i * len(flat) // count:(i + 1) * len(flat) // count]
            groups.append((part[0][0], " ".join(text for _, text in part)))
    else:  # fewer sentences than shots: cover sentences from more angles, in order
        for i in range(count):
            groups.append(flat[i * len(flat) // count])
    duration = min(max(round(target / count * 2) / 2, 1.0), 10.0)
    answer_scenes = [{"heading": title, "location": title, "shots": []} for title, _ in scenes]
    for number, (scene, text) in enumerate(groups):
        angle, move = ANGLES[number % len(ANGLES)], MOVES[(number * 3) % len(MOVES)]
        tone = TONES[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(TONES)]
        present = [n for n in names if re.search(rf"\b{re.escape(n)}\b", text, re.IGNORECASE)]
        answer_scenes[scene]["shots"].append({
            "duration_s": duration, "camera_angle": angle, "camera_movement": move,
            "action": f"Shot {number + 1}, {angle}: {text.strip()}", "emotional_tone": tone, "mode": mode,
            "physics": {}, "characters": present, "on_screen_text": None})
    answer = {"episode_title": str(request.get("title") or scenes[0][0]), "scenes": answer_scenes}
    return _complete(answer, schema)


def _request(user_text: str) -> dict:
    start = user_text.find("{")
    if start >= 0:
        try:
            value = json.loads(user_text[start:])
            if isinstance(value, dict) and "script" in value:
                return value
        except ValueError:
            pass
    return {"script": user_text}


def _scenes(script: str) -> list[tuple[str, list[str]]]:
    text = script.replace("\r\n", "\n")
    marks = list(_HEADING.finditer(text))
    if marks:
        chunks = [(m.group(0).strip(), text[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(text))])
                  for i, m in enumerate(marks)]
        lead = text[:marks[0].start()].strip()
        if lead:
            chunks.insert(0, ("Opening", lead))
    else:
        chunks = [(f"Scene {i + 1}", chunk) for i, chunk in enumerate(re.split(r"\n\s*\n", text)) if chunk.strip()]
    scenes = []
    for title, body in chunks:
        sentences = [s.strip() for s in _SENTENCE.findall(body) if len(s.strip()) > 2]
        if sentences:
            scenes.append((title[:120], sentences))
    return scenes


def _complete(value, schema: dict):
    """Every property the schema names is present (a property this answer does not know is null)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {name: _complete(value.get(name), sub) for name, sub in schema["properties"].items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_complete(item, schema["items"]) for item in value]
    for option in schema.get("anyOf") or []:
        if isinstance(option, dict) and option.get("type") == "object" and isinstance(value, dict):
            return _complete(value, option)
    return value
