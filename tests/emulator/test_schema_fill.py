"""The generic schema filler: every answer validates against its schema."""

from __future__ import annotations

import jsonschema
import pytest
from emulator_helpers import image_bytes

from vidpipe_local.emulator.pixels import analyze
from vidpipe_local.emulator.schema_fill import FillContext, SeenImage, fill

TRICKY = {
    "type": "object",
    "$defs": {
        "Shot": {
            "type": "object",
            "properties": {
                "frame_index": {"type": "integer"},
                "caption": {"type": "string", "maxLength": 200},
                "colors": {"type": "array", "items": {"type": "string"}, "minItems": 4, "uniqueItems": True},
                "confidence": {"type": "number", "exclusiveMaximum": 0.5},
                "lighting": {"enum": ["dark", "dim", "bright", "very bright"]},
                "brightness": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            },
            "required": ["frame_index", "caption", "colors", "confidence", "lighting", "brightness"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "version": {"const": 2},
        "shots": {"type": "array", "items": {"$ref": "#/$defs/Shot"}, "maxItems": 5},
        "notes": {"allOf": [{"type": "object", "properties": {"text": {"type": "string", "minLength": 3}}}],
                  "properties": {"ok": {"type": "boolean"}}},
        "rating": {"type": "integer", "minimum": 3, "maximum": 7},
        "extra": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}, "minItems": 2},
    },
    "required": ["version", "shots", "notes", "rating", "extra", "items"],
}


def _seen(count: int) -> list[SeenImage]:
    colours = [(30, 30, 220), (220, 60, 30), (40, 200, 40), (0, 0, 0)]
    return [SeenImage(analyze(image_bytes(64, 48, colours[i % 4])), i) for i in range(count)]


@pytest.mark.parametrize("images", [0, 1, 3, 7])
def test_given_tricky_schema_when_filled_then_valid(images):
    answer = fill(TRICKY, FillContext(_seen(images), "busy street at night"))

    jsonschema.validate(answer, TRICKY)


def test_given_per_frame_array_when_filled_then_capped_by_max_items_and_in_order():
    seen = _seen(7)

    answer = fill(TRICKY, FillContext(seen, ""))

    assert [shot["frame_index"] for shot in answer["shots"]] == [0, 1, 2, 3, 4]
    assert [shot["lighting"] for shot in answer["shots"]] == [s.facts.brightness_word for s in seen[:5]]
    assert answer["shots"][0]["brightness"] == seen[0].facts.brightness
    assert f"sig:{seen[1].facts.signature}" in answer["shots"][1]["caption"]


def test_given_no_images_when_filled_then_nullable_numbers_are_null_and_strings_digest_the_prompt():
    schema = {"type": "object", "properties": {"speed": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                                               "summary": {"type": "string"}}}

    answer = fill(schema, FillContext([], "A hyperlapse through a neon city at night"))

    assert answer["speed"] is None
    assert "hyperlapse" in answer["summary"] and "neon" in answer["summary"]
