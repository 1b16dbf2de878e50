"""Token counts as the providers document them: the emulator's own rules.

Written from the providers' documentation, independently of the deployed
package (the emulator imports nothing from ``vidpipe``), so the usage it
reports — and bills — is a second opinion on vidpipe's estimates, not a
copy of them. Each rule is pinned to its documented worked examples in
tests/emulator/test_chat_tokens.py.

Images, by the model's name (lower case, the part after the last ``/``,
longest matching prefix wins):

- **OpenAI tiles** (gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3; the default for
  an unknown model): ``detail=low`` costs the base tokens. ``high`` (and
  ``auto``, billed as high): fit inside 2048×2048, then shrink so the short
  side is at most 768 (never enlarged), then base + tile tokens per 512 px
  tile. Base / tile: 4o, 4.1, 4.5: 85 / 170; gpt-4o-mini: 2833 / 5667;
  gpt-5: 70 / 140; o1, o3: 75 / 150.
  Documented: 1024×1024 high → 765; 2048×4096 high → 1105; low → 85.
- **OpenAI patches** (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini,
  gpt-5-nano): the 32 px patches covering the image; over 1536 patches the
  image is shrunk (√(32²·1536 / (w·h)), then again so one side fills whole
  patches) and the count capped at 1536; then × the model's multiplier
  (4.1-mini, 5-mini 1.62; 4.1-nano, 5-nano 2.46; o4-mini 1.72), rounded up.
  ``detail`` does not change the count. Documented: 1024×1024 → 1024
  patches; 1800×2400 → 1452 patches.
- **Gemini**: both sides ≤ 384 px → 258 tokens; larger images are cut into
  768×768 tiles, 258 tokens each.
- **Claude**: ⌈w × h / 750⌉ after shrinking to fit 1568 px on the long side.
  Documented: 200×200 ≈ 54, 1000×1000 ≈ 1334, 1092×1092 ≈ 1590. (The docs
  also mention a ~1,600-token downscale, but their own table of sizes that
  are *not* resized includes 784×1568 = 1639 tokens, so it is not modelled.)
- **Text only** (deepseek, gpt-3.5, o1-mini, o3-mini): an image is refused
  with HTTP 400 (``ImagesNotSupported``).

Text: ⌈characters / 4⌉ per text segment — OpenAI's rule of thumb of about
four characters per token for English text (a segment is a string
``content`` or one ``text`` part; empty text is 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPS = 1e-9  # float slack before rounding up a side that is a whole number of tiles


class ImagesNotSupported(ValueError):
    """The model takes text only."""


@dataclass(frozen=True)
class Tiles:
    base: int
    tile: int


@dataclass(frozen=True)
class Patches:
    multiplier: float


@dataclass(frozen=True)
class GeminiTiles:
    pass


@dataclass(frozen=True)
class ClaudePixels:
    pass


@dataclass(frozen=True)
class TextOnly:
    pass


VisionRule = Tiles | Patches | GeminiTiles | ClaudePixels | TextOnly

DEFAULT_RULE = Tiles(85, 170)

# Name prefixes; the longest one that matches decides.
_RULES: dict[str, VisionRule] = {
    "gpt-4o-mini": Tiles(2833, 5667),
    "gpt-4o": Tiles(85, 170),
    "chatgpt-4o": Tiles(85, 170),
    "gpt-4.1-mini": Patches(1.62),
    "gpt-4.1-nano": Patches(2.46),
    "gpt-4.1": Tiles(85, 170),
    "gpt-4.5": Tiles(85, 170),
    "gpt-5-mini": Patches(1.62),
    "gpt-5-nano": Patches(2.46),
    "gpt-5": Tiles(70, 140),
    "o4-mini": Patches(1.72),
    "o1-mini": TextOnly(),
    "o3-mini": TextOnly(),
    "o1": Tiles(75, 150),
    "o3": Tiles(75, 150),
    "gemini": GeminiTiles(),
    "claude": ClaudePixels(),
    "deepseek": TextOnly(),
    "gpt-3.5": TextOnly(),
}

PATCH_PX = 32
MAX_PATCHES = 1536


def vision_rule(model: str) -> VisionRule:
    name = model.lower().rsplit("/", 1)[-1]
    matches = [prefix for prefix in _RULES if name.startswith(prefix)]
    return _RULES[max(matches, key=len)] if matches else DEFAULT_RULE


def has_rule(model: str) -> bool:
    """Whether one of the documented rules names ``model`` (others get ``DEFAULT_RULE``)."""
    name = model.lower().rsplit("/", 1)[-1]
    return any(name.startswith(prefix) for prefix in _RULES)


def accepts_images(model: str) -> bool:
    return not isinstance(vision_rule(model), TextOnly)


def image_tokens(model: str, width: int, height: int, detail: str = "high") -> int:
    """Tokens one ``width`` × ``height`` image costs on ``model``; ``detail``
    is ``low`` or ``high`` (the caller maps ``auto`` to ``high``)."""
    if width <= 0 or height <= 0:
        raise ValueError("image sides must be positive")
    rule = vision_rule(model)
    if isinstance(rule, TextOnly):
        raise ImagesNotSupported(f"{model} does not accept images")
    if isinstance(rule, GeminiTiles):
        return 258 if width <= 384 and height <= 384 else 258 * _cover(width, 768) * _cover(height, 768)
    if isinstance(rule, ClaudePixels):
        scale = min(1.0, 1568 / max(width, height))
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        return math.ceil(w * h / 750)
    if isinstance(rule, Patches):
        return math.ceil(patch_count(width, height) * rule.multiplier - _EPS)
    if detail == "low":
        return rule.base
    return rule.base + rule.tile * tile_count(width, height)


def tile_count(width: int, height: int) -> int:
    """512 px tiles after fitting in 2048×2048 and shrinking the short side to 768."""
    w, h = float(width), float(height)
    fit = min(1.0, 2048 / w, 2048 / h)
    w, h = w * fit, h * fit
    short = min(w, h)
    if short > 768:
        w, h = w * 768 / short, h * 768 / short
    return _cover(w, 512) * _cover(h, 512)


def patch_count(width: int, height: int) -> int:
    """32 px patches covering the image, shrunk to at most 1536 patches."""
    patches = _cover(width, PATCH_PX) * _cover(height, PATCH_PX)
    if patches <= MAX_PATCHES:
        return patches
    r = math.sqrt(PATCH_PX**2 * MAX_PATCHES / (width * height))
    w_patches, h_patches = width * r / PATCH_PX, height * r / PATCH_PX
    r *= min(math.floor(w_patches) / w_patches, math.floor(h_patches) / h_patches)
    return min(MAX_PATCHES, _cover(width * r, PATCH_PX) * _cover(height * r, PATCH_PX))


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _cover(length: float, tile: int) -> int:
    """Tiles of ``tile`` px needed to cover ``length`` px (at least one)."""
    return max(1, math.ceil(length / tile - _EPS))
