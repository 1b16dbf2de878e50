"""Frames shrunk to the size a model family charges least for, as JPEG."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

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
    if (w, h) != (width, height):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return ModelImage(encode_jpeg(image), (w, h), detail)


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def _family(model_or_family: str) -> ModelFamily:
    try:
        return ModelFamily(model_or_family.lower())
    except ValueError:
        return family_of(model_or_family)
