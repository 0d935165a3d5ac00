"""Readable text on rgb_array frames: a caption band above a picture and labels inside it.

Renderers build their picture as a numpy array and pass it here with the words a viewer needs
(what is shown, the clock, the last action). Text is drawn with Pillow's bundled default font;
without Pillow the band stays blank, so frames keep one fixed size either way. Nothing here
knows an env: callers pass plain strings and arrays (DESIGN rule 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

LINE = 16                  # pixels per caption line (a multiple of 16 keeps video-codec sizes)
TEXT = (30, 30, 30)
BAND = np.array([236, 236, 236], dtype=np.uint8)


@lru_cache(maxsize=4)
def _font(size: int) -> Any:
    try:
        from PIL import ImageFont
    except ImportError:  # Pillow is optional: frames then carry no text
        return None
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def header_height(lines: int) -> int:
    """Height in pixels of a caption band of ``lines`` lines."""
    return LINE * lines


def with_caption(picture: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """``picture`` (H, W, 3) uint8 under a band of ``len(lines)`` text lines: (H + 16 n, W, 3)."""
    band = np.empty((header_height(len(lines)), picture.shape[1], 3), dtype=np.uint8)
    band[...] = BAND
    out = np.ascontiguousarray(np.concatenate([band, picture], axis=0))
    for k, line in enumerate(lines):
        draw_text(out, 4, k * LINE + 2, line)
    return out


def draw_text(img: np.ndarray, x: int, y: int, text: str, colour: Sequence[int] = TEXT,
              size: int = 11) -> None:
    """Write ``text`` into ``img`` (uint8 RGB, changed in place) with its top-left corner at (x, y);
    text past the right edge is clipped."""
    font = _font(size)
    if font is None or not text:
        return
    from PIL import Image, ImageDraw
    pil = Image.fromarray(img)
    ImageDraw.Draw(pil).text((x, y), text, fill=tuple(int(c) for c in colour), font=font)
    img[...] = np.asarray(pil)
