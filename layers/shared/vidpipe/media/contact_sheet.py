"""A contact sheet: sampled frames in a grid, each captioned with its timestamp."""

from __future__ import annotations

import functools
import io
import math
import unicodedata
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidpipe.media.resize import encode_jpeg, to_pil

Tile = tuple[np.ndarray | bytes, str]  # (BGR image or JPEG/PNG bytes, caption)

GUTTER = 6
CAPTION_HEIGHT = 22
BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (235, 235, 235)
FONT_SIZE = 13  # px; capitals ~9 px high
# Pillow's built-in font (a subset of Aileron) has glyphs for ASCII and these only. Other characters
# are folded into them ("Scène 3 — café" → "Scene 3 - cafe") or drawn as "?".
_FONT_EXTRAS = frozenset("©«°±´·»‘’“”…‹›⁄™")
_STAND_INS = {"—": "-", "–": "-", "−": "-", "×": "x"}


def make_contact_sheet(tiles: Sequence[Tile], columns: int = 4, tile_width: int = 320) -> bytes:
    """JPEG of a grid of ``columns`` tiles ``tile_width`` px wide, each with its caption under it.

    Every cell has the height of the tallest tile (scaled to ``tile_width``);
    narrower pictures are centred on the dark background.
    """
    if not tiles:
        raise ValueError("a contact sheet needs at least one tile")
    images = [_as_image(image) for image, _ in tiles]
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    picture_height = max(round(tile_width * img.height / img.width) for img in images)
    cell_w, cell_h = tile_width, picture_height + CAPTION_HEIGHT
    sheet = Image.new("RGB", (GUTTER + columns * (cell_w + GUTTER), GUTTER + rows * (cell_h + GUTTER)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (image, (_, caption)) in enumerate(zip(images, tiles, strict=True)):
        x = GUTTER + (i % columns) * (cell_w + GUTTER)
        y = GUTTER + (i // columns) * (cell_h + GUTTER)
        _paste_fitted(sheet, image, x, y, cell_w, picture_height)
        text = _fit_text(_drawable(caption), cell_w - 8)
        draw.text((x + 4, y + picture_height + CAPTION_HEIGHT / 2), text, fill=TEXT_COLOUR, font=_font(), anchor="lm")
    return encode_jpeg(sheet)


@functools.cache
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)


def _as_image(image: np.ndarray | bytes) -> Image.Image:
    if isinstance(image, np.ndarray):
        return to_pil(image).convert("RGB")
    try:
        with Image.open(io.BytesIO(image)) as decoded:
            return decoded.convert("RGB")
    except OSError as exc:  # includes PIL.UnidentifiedImageError and truncated files
        raise ValueError("a contact-sheet tile is neither an image array nor decodable image bytes") from exc


def _paste_fitted(sheet: Image.Image, image: Image.Image, x: int, y: int, cell_w: int, cell_h: int) -> None:
    scale = min(cell_w / image.width, cell_h / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    sheet.paste(image.resize((w, h), resample), (x + (cell_w - w) // 2, y + (cell_h - h) // 2))


def _drawable(text: str) -> str:
    return "".join(_fold(ch) for ch in text)


def _fold(ch: str) -> str:
    if (ch.isascii() and ch.isprintable()) or ch in _FONT_EXTRAS:
        return ch
    if ch in _STAND_INS:
        return _STAND_INS[ch]
    if ch.isspace():
        return " "
    # "é" → "e" + a combining accent; "ﬁ" → "fi"
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii() and c.isprintable()) or "?"


def _fit_text(text: str, max_width: int) -> str:
    if _font().getlength(text) <= max_width:
        return text
    while text and _font().getlength(text + "…") > max_width:
        text = text[:-1]
    return text + "…"
