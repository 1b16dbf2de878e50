"""Fill a JSON Schema with values derived from what the call received.

Generic over the schema (objects, arrays, strings, numbers, integers,
booleans, enums, const, $ref/$defs, anyOf/oneOf/allOf, min/max bounds; every
property is filled, so ``required`` always holds), with a few naming
conventions so answers carry the pixels:

- an array of objects that looks per-frame (its name, or its items'
  property names, mention frame/image/index...) gets one element per
  received image, in order; inside it every value describes that image;
- strings get the image's description including ``sig:<signature>``
  (fields named like colour get its dominant colour);
- string arrays get the image's tags (colour names, brightness, edges);
- integers named like index get the image's index as labelled in the
  request ("Frame 12 at 3.50s" before the image), else its 0-based position;
  numbers named like time get the labelled timestamp; numbers named like
  brightness / edge / confidence get those;
- with no images, a string field whose name the user's JSON message also
  has echoes that value (e.g. ``prompt``), other strings and string arrays
  digest the prompt text, enums pick the value the prompt mentions, and
  nullable numbers and booleans are null (there is no evidence for them).

Not handled: ``pattern``, ``format``, ``not``, conditional schemas.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from vidpipe_local.emulator.pixels import ImageFacts
from vidpipe_local.emulator.prompt_digest import digest, key_phrases, mentions

_PER_FRAME = re.compile(r"frame|image|shot|observation|index|idx|(^|_)sig")
_INDEX = re.compile(r"index|idx|position|^frame$|^frame_?(no|num|number|id)$|^i$|^n$")
_COUNT = re.compile(r"count|total|^num_|^n_")
_COLOUR = re.compile(r"colou?r")
_TIME = re.compile(r"time|second|_s$|^t$|(^|_)(start|end)(_|$)")


@dataclass(frozen=True)
class SeenImage:
    facts: ImageFacts
    index: int  # as labelled in the request, else the position among the images
    timestamp_s: float | None = None  # as labelled, if the label has one


@dataclass(frozen=True)
class FillContext:
    images: list[SeenImage]
    prompt: str  # the user's text


def fill(schema: dict, ctx: FillContext) -> Any:
    return _Filler(schema, ctx).value(schema, name="", image=None)


class _Filler:
    def __init__(self, root: dict, ctx: FillContext):
        self.root = root
        self.ctx = ctx
        self.user_json = _json_object(ctx.prompt)

    def value(self, schema: dict, name: str, image: int | None) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.enum(schema["enum"], image)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(s) for s in schema[key]]
                chosen = next((s for s in options if s.get("type") != "null"), options[0])
                nullable = len(options) > 1 and any(s.get("type") == "null" for s in options)
                if nullable and not self.ctx.images and self.kind(chosen) in ("number", "integer", "boolean"):
                    return None
                return self.value(chosen, name, image)
        kind = self.kind(schema)
        key = name.lower()
        if kind == "object":
            return {prop: self.value(sub, prop, image) for prop, sub in schema.get("properties", {}).items()}
        if kind == "array":
            return self.array(schema, key, image)
        if kind == "string":
            return _bounded_string(self.text(key, image), schema)
        if kind == "integer":
            return int(_clamp(self.integer(key, image), schema, integer=True))
        if kind == "number":
            return _clamp(self.number(key, image), schema, integer=False)
        if kind == "boolean":
            return False
        return None

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            node: Any = self.root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in schema["allOf"]:
                sub = self.resolve(sub)
                merged["properties"] = {**merged.get("properties", {}), **sub.get("properties", {})}
                merged.update({k: v for k, v in sub.items() if k != "properties"})
            schema = merged
        return schema

    @staticmethod
    def kind(schema: dict) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind:
            return kind
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"

    def enum(self, values: list, image: int | None) -> Any:
        haystack = " ".join(self.tags(image)) if self.ctx.images else self.ctx.prompt
        named = [v for v in values if isinstance(v, str) and mentions(haystack, v)]
        return max(named, key=len) if named else values[0]  # "very bright" over "bright"

    def array(self, schema: dict, key: str, image: int | None) -> list:
        items = self.resolve(schema.get("items", {}))
        low, high = schema.get("minItems", 0), schema.get("maxItems", math.inf)
        if image is None and self.ctx.images and self.kind(items) == "object" and self.per_frame(key, items):
            count = min(max(len(self.ctx.images), low), high)
            return [self.value(items, key, i % len(self.ctx.images)) for i in range(count)]
        if self.kind(items) == "string" and "enum" not in items:
            words = self.tags(image) if self.ctx.images else key_phrases(self.ctx.prompt)
            words = words or ["none"]
            while len(words) < low:
                words.append(f"{words[0]}-{len(words)}")
            return [_bounded_string(w, items) for w in words[: int(min(len(words), high))]]
        return [self.value(items, key, image) for _ in range(int(min(max(low, 1), high)))]

    def per_frame(self, key: str, items: dict) -> bool:
        return bool(_PER_FRAME.search(key)) or any(_PER_FRAME.search(p.lower()) for p in items.get("properties", {}))

    def seen(self, image: int | None) -> list[SeenImage]:
        return self.ctx.images if image is None else [self.ctx.images[image]]

    def tags(self, image: int | None) -> list[str]:
        return list(dict.fromkeys(tag for seen in self.seen(image) for tag in seen.facts.tags))

    def text(self, key: str, image: int | None) -> str:
        images = self.seen(image)
        if not images:
            echoed = self.user_json.get(key)
            return echoed if isinstance(echoed, str) and echoed else digest(self.ctx.prompt)
        if _COLOUR.search(key):
            return images[0].facts.colours[0]
        if len(images) == 1:
            return images[0].facts.describe()
        return "; ".join(f"frame {s.index}: {s.facts.describe()}" for s in images)

    def integer(self, key: str, image: int | None) -> int:
        if _COUNT.search(key):
            return len(self.ctx.images)
        if _INDEX.search(key) or _TIME.search(key):
            return self.ctx.images[image].index if image is not None else 0
        return 1

    def number(self, key: str, image: int | None) -> float:
        seen = self.ctx.images[image] if image is not None else None
        if seen and "bright" in key:
            return seen.facts.brightness
        if seen and "edge" in key:
            return seen.facts.edge_density
        if re.search(r"confidence|score|probability", key):
            return 0.9
        if _TIME.search(key):
            if seen is None:
                return 0.0
            return seen.timestamp_s if seen.timestamp_s is not None else float(seen.index)
        return 1.0


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _clamp(value: float, schema: dict, integer: bool) -> float:
    step = 1 if integer else 1e-6
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + step)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - step)
    return value


def _bounded_string(text: str, schema: dict) -> str:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    while len(text) < low:
        text += " ."
    return text[:high] if high is not None else text
