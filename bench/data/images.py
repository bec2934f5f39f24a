"""Reading photos safely: every way a file can be bad becomes a ``BadImage`` with a reason, never a crash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 40  # px; below this no detector finds a usable face (MTCNN's smallest face is 20 px)
GRAY_TOLERANCE = 3  # max |R-G|, |G-B| (0-255) for an RGB file to count as grayscale (JPEG noise)


class BadImage(Exception):
    """A photo that cannot enter the benchmark; ``reason`` is short and stable (used in reports)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def file_digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def decode_rgb(data: bytes, source: str | Path = "<bytes>") -> tuple[np.ndarray, bool]:
    """Decode image bytes to uint8 ``H x W x 3`` RGB. Returns (pixels, is_grayscale).

    Raises BadImage for unreadable/truncated files and tiny images. Grayscale photos (one channel, or
    RGB with equal channels) decode fine and are flagged, so callers decide whether to keep them.
    """
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # forces full decode: truncated JPEGs fail here, not later
            mode = img.mode
            rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage("unreadable", f"{source}: {exc}") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise BadImage("too small", f"{w}x{h} px (< {MIN_SIDE} px)")
    gray = mode in ("L", "LA", "1", "I", "I;16", "F") or _channels_equal(rgb)
    return rgb, gray


def _channels_equal(rgb: np.ndarray) -> bool:
    sample = rgb[::4, ::4].astype(np.int16)  # a subsample is enough to see colour
    return bool(
        np.abs(sample[..., 0] - sample[..., 1]).max() <= GRAY_TOLERANCE
        and np.abs(sample[..., 1] - sample[..., 2]).max() <= GRAY_TOLERANCE
    )
