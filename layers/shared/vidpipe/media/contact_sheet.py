"""A contact sheet: sampled frames in a grid, each captioned with its timestamp."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import cv2
import numpy as np

from vidpipe.media.resize import encode_jpeg

Tile = tuple[np.ndarray | bytes, str]  # (BGR image or JPEG/PNG bytes, caption)

GUTTER = 6
CAPTION_HEIGHT = 22
BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (235, 235, 235)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.42
# OpenCV's Hershey fonts draw ASCII only; these are the non-ASCII characters captions commonly use.
_ASCII_STAND_INS = {"—": "-", "–": "-", "·": "-", "…": "...", "×": "x", "’": "'", "“": '"', "”": '"'}


def timestamp_label(t_s: float) -> str:
    """``83.5`` → ``"00:01:23.5"`` (tenths of a second)."""
    tenths = round(t_s * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    return f"{hours:02d}:{minutes:02d}:{rest // 10:02d}.{rest % 10}"


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
    picture_height = max(round(tile_width * img.shape[0] / img.shape[1]) for img in images)
    cell_w, cell_h = tile_width, picture_height + CAPTION_HEIGHT
    sheet = np.full(
        (GUTTER + rows * (cell_h + GUTTER), GUTTER + columns * (cell_w + GUTTER), 3), BACKGROUND, dtype=np.uint8
    )
    for i, (image, (_, caption)) in enumerate(zip(images, tiles, strict=True)):
        x = GUTTER + (i % columns) * (cell_w + GUTTER)
        y = GUTTER + (i // columns) * (cell_h + GUTTER)
        _paste_fitted(sheet[y : y + picture_height, x : x + cell_w], image)
        _draw_caption(sheet, caption, x, y + picture_height, cell_w)
    return encode_jpeg(sheet)


def _as_image(image: np.ndarray | bytes) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError("a contact-sheet tile is neither an image array nor decodable image bytes")
    return decoded


def _paste_fitted(cell: np.ndarray, image: np.ndarray) -> None:
    cell_h, cell_w = cell.shape[:2]
    scale = min(cell_w / image.shape[1], cell_h / image.shape[0])
    w, h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    x, y = (cell_w - w) // 2, (cell_h - h) // 2
    cell[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=interpolation)


def _draw_caption(sheet: np.ndarray, caption: str, x: int, y: int, width: int) -> None:
    text = _fit_text(_ascii(caption), width - 8)
    (_, text_h), _ = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    baseline_y = y + (CAPTION_HEIGHT + text_h) // 2
    cv2.putText(sheet, text, (x + 4, baseline_y), FONT, FONT_SCALE, TEXT_COLOUR, 1, cv2.LINE_AA)


def _ascii(text: str) -> str:
    """"Scène 3 — café" → "Scene 3 - cafe"; anything else non-ASCII becomes "?"."""
    text = unicodedata.normalize("NFKD", "".join(_ASCII_STAND_INS.get(ch, ch) for ch in text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.encode("ascii", "replace").decode("ascii")


def _fit_text(text: str, max_width: int) -> str:
    if cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0] <= max_width:
        return text
    while text and cv2.getTextSize(text + "...", FONT, FONT_SCALE, 1)[0][0] > max_width:
        text = text[:-1]
    return text + "..."
