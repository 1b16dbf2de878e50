"""Documented image-token rules per model family, and the cheapest frame size.

Used two ways: to plan frames (the size that costs fewest tokens) and to
estimate a request's cost before reserving budget. (The provider emulator
keeps its own implementation of the documented rules, so its ``usage`` is
an independent check on these estimates.)

- Gemini: an image with both sides ≤ 384 px costs 258 tokens; a larger one is
  tiled in 768×768 tiles, 258 tokens each.
- OpenAI GPT-4.1 / GPT-4o: ``detail=low`` costs 85. ``high``: fit inside
  2048×2048, then shrink so the short side is at most 768, then
  85 + 170 per 512 px tile. Images are never scaled up.
- Claude: about width × height / 750 tokens (images are first shrunk to fit
  1568 px on the long side).
- Text: about one token per 4 characters (a documented rule of thumb).
"""

from __future__ import annotations

import math
from enum import StrEnum


class ModelFamily(StrEnum):
    GEMINI = "gemini"
    OPENAI = "openai"
    CLAUDE = "claude"


def family_of(model: str) -> ModelFamily:
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith("gemini"):
        return ModelFamily.GEMINI
    if name.startswith("claude"):
        return ModelFamily.CLAUDE
    return ModelFamily.OPENAI


def _fit(width: int, height: int, max_w: float, max_h: float) -> tuple[int, int]:
    scale = min(1.0, max_w / width, max_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_tokens(family: ModelFamily | str, width: int, height: int, detail: str = "high") -> int:
    family = ModelFamily(family)
    if width <= 0 or height <= 0:
        raise ValueError("image sides must be positive")
    if family is ModelFamily.GEMINI:
        if width <= 384 and height <= 384:
            return 258
        return 258 * math.ceil(width / 768) * math.ceil(height / 768)
    if family is ModelFamily.CLAUDE:
        w, h = _fit(width, height, 1568, 1568)
        return max(1, math.ceil(w * h / 750))
    if detail == "low":
        return 85
    w, h = _fit(width, height, 2048, 2048)
    short = min(w, h)
    if short > 768:
        w, h = round(w * 768 / short), round(h * 768 / short)
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def cheapest_frame_size(family: ModelFamily | str, width: int, height: int) -> tuple[tuple[int, int], str]:
    """The size (and OpenAI ``detail``) to send a frame at for the fewest tokens.

    Keeps the aspect ratio and never upscales. Gemini: fit in 384×384 (258
    tokens). OpenAI: fit in 512×512 at ``detail=low`` (85 tokens). Claude:
    fit in 384×384 (~197 tokens at 16:9).
    """
    family = ModelFamily(family)
    if family is ModelFamily.OPENAI:
        return _fit(width, height, 512, 512), "low"
    return _fit(width, height, 384, 384), "high"
