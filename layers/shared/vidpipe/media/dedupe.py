"""Near-duplicate frame dropping with a 64-bit difference hash (dHash).

dHash: shrink to 9×8 grey, one bit per horizontally adjacent pair (is the left
pixel brighter?). Re-encoding, small shifts and brightness changes flip few
bits; a different picture flips about half of them. Two frames whose hashes
differ in at most ``max_distance`` bits are the same picture for the model.

Streaming: a frame is compared with the last ``window`` kept frames only, so
memory is constant and an A-B-A cut back to a view already sent is dropped
only while A is still in the window.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PIL import Image

from vidpipe.media.resize import to_pil

DEFAULT_MAX_DISTANCE = 6  # of 64 bits
DEFAULT_WINDOW = 4


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of a BGR or grey image."""
    # Area-average to 9×8, then grey: grey is linear, so the order barely matters, and only 72 pixels convert.
    small = np.asarray(to_pil(image).resize((9, 8), Image.Resampling.BOX).convert("L"))
    bits = (small[:, :-1] > small[:, 1:]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class Deduper:
    """``keep(image)`` is False for a near-duplicate of a recently kept image."""

    def __init__(self, max_distance: int = DEFAULT_MAX_DISTANCE, window: int = DEFAULT_WINDOW):
        self.max_distance = max_distance
        self._recent: deque[int] = deque(maxlen=window)

    def keep(self, image: np.ndarray) -> bool:
        h = dhash(image)
        if any(hamming(h, seen) <= self.max_distance for seen in self._recent):
            return False
        self._recent.append(h)
        return True
