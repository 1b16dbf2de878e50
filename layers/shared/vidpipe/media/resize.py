"""Frames shrunk to the size a model family charges least for, as JPEG."""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
from PIL import Image

from vidpipe.providers.image_tokens import ModelFamily, cheapest_frame_size, family_of

JPEG_QUALITY = 85


class ModelImage(NamedTuple):
    jpeg: bytes
    size: tuple[int, int]  # (width, height) actually encoded
    detail: str  # the OpenAI ``detail`` to send it with ("low" / "high")


def downscale_for_model(image: np.ndarray, model_or_family: str) -> ModelImage:
    """Shrink a BGR frame to the cheapest size for a model (``"gemini-2.5-flash"``)
    or family (``"gemini"``, ``"openai"``, ``"claude"``); never enlarges it."""
    family = _family(model_or_family)
    height, width = image.shape[:2]
    (w, h), detail = cheapest_frame_size(family, width, height)
    picture = to_pil(image)
    if (w, h) != (width, height):
        picture = picture.resize((w, h), Image.Resampling.BOX)  # area averaging; the size is never larger
    return ModelImage(encode_jpeg(picture), (w, h), detail)


def to_pil(image: np.ndarray) -> Image.Image:
    """A BGR (or grey) array as a Pillow image (RGB or L)."""
    if image.ndim == 2:
        return Image.fromarray(image)
    height, width = image.shape[:2]
    return Image.frombuffer("RGB", (width, height), np.ascontiguousarray(image), "raw", "BGR", 0, 1)


def encode_jpeg(image: np.ndarray | Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG of a BGR array or a Pillow image (4:2:0, baseline)."""
    picture = image if isinstance(image, Image.Image) else to_pil(image)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _family(model_or_family: str) -> ModelFamily:
    try:
        return ModelFamily(model_or_family.lower())
    except ValueError:
        return family_of(model_or_family)
