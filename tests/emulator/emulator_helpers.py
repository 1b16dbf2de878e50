"""Helpers for the provider emulator tests: images of exact sizes and chat bodies."""

from __future__ import annotations

import base64

import cv2
import numpy as np

API_KEY = "test-key"


def image_bytes(width: int, height: int, colour_bgr=(40, 40, 220), ext: str = ".png", pattern: bool = True) -> bytes:
    """An image of exactly width x height: a solid colour, with a white
    square in the top-left quarter when ``pattern`` (a distinct signature)."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = colour_bgr
    if pattern:
        pixels[: height // 2, : width // 2] = 255
    ok, encoded = cv2.imencode(ext, pixels)
    assert ok
    return encoded.tobytes()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(data: bytes, detail: str | None = None, mime: str = "image/png") -> dict:
    image_url = {"url": data_url(data, mime)}
    if detail:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def chat_body(model: str, *parts: dict, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": list(parts)}], **extra}
