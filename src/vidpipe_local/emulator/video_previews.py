"""The preview images of a generated video, served by
``GET /v1/videos/{id}/content?variant=...`` (JPEG, ``image/jpeg``):

- ``thumbnail``: the middle frame (index ``frame_count // 2``) at the
  video's own size;
- ``spritesheet``: up to ``SPRITE_FRAMES`` frames evenly spaced from the
  first (index ``i * frame_count // n``), each shrunk to at most
  ``SPRITE_TILE_WIDTH`` px wide, left to right then top to bottom,
  ``SPRITE_COLUMNS`` per row (a short last row is padded black).

Frames are drawn directly (videogen.render_frame), the same pixels the MP4
encodes before compression; no MP4 is rendered or decoded for a preview.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vidpipe_local.emulator.videogen import VideoSpec, render_frame

VARIANTS = ("video", "thumbnail", "spritesheet")
SPRITE_FRAMES = 10
SPRITE_COLUMNS = 5
SPRITE_TILE_WIDTH = 160
JPEG_QUALITY = 90


def thumbnail_index(spec: VideoSpec) -> int:
    return spec.frame_count // 2


def sprite_indexes(spec: VideoSpec) -> list[int]:
    count = min(SPRITE_FRAMES, spec.frame_count)
    return [i * spec.frame_count // count for i in range(count)]


def sprite_tile_size(spec: VideoSpec) -> tuple[int, int]:
    """(width, height) of one spritesheet tile."""
    scale = min(1.0, SPRITE_TILE_WIDTH / spec.width)
    return max(1, round(spec.width * scale)), max(1, round(spec.height * scale))


def thumbnail_jpeg(spec: VideoSpec) -> bytes:
    return _jpeg(render_frame(spec, thumbnail_index(spec)))


def spritesheet_jpeg(spec: VideoSpec) -> bytes:
    indexes = sprite_indexes(spec)
    width, height = sprite_tile_size(spec)
    columns = min(SPRITE_COLUMNS, len(indexes))
    rows = math.ceil(len(indexes) / columns)
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for n, index in enumerate(indexes):
        tile = cv2.resize(render_frame(spec, index), (width, height), interpolation=cv2.INTER_AREA)
        row, column = divmod(n, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = tile
    return _jpeg(sheet)


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview as JPEG")
    return encoded.tobytes()
