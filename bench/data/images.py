"""Reading photos safely: every way a file can be bad becomes a ``BadImage`` with a reason, never a crash."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 40  # px; below this no detector finds a usable face (MTCNN's smallest face is 20 px)
GRAY_TOLERANCE = 3  # max |R-G|, |G-B| (0-255) for an RGB file to count as grayscale (JPEG noise)
# Our own limit, checked on the header before any pixel is decoded, rather than PIL's process-wide
# default (89 MP warns, 179 MP fails): it is above the default output of common cameras (12-50 MP),
# and a 50 MP photo already decodes to 150 MB of RGB, more than a face detector ever needs. A file
# declaring more (a "decompression bomb": a few KB that inflate to GBs) is refused unread.
MAX_PIXELS = 50_000_000


class BadImage(Exception):
    """A photo that cannot enter the benchmark; ``reason`` is short and stable (used in reports)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def file_digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def decode_rgb(data: bytes, source: str | Path = "<bytes>") -> tuple[np.ndarray, bool]:
    """Decode image bytes to uint8 ``H x W x 3`` RGB. Returns (pixels, is_grayscale).

    Raises BadImage for unreadable/truncated files, tiny images and images over ``MAX_PIXELS`` (never
    decoded). Grayscale photos (one channel, or RGB with equal channels) decode fine and are flagged,
    so callers decide whether to keep them.
    """
    try:
        with warnings.catch_warnings():
            # PIL only warns between 89 and 179 MP; as an error it cannot slip through to the decode
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise BadImage("too large", _too_large(w, h))
                img.load()  # forces full decode: truncated JPEGs fail here, not later
                mode = img.mode
                rgb = np.asarray(eight_bit(img).convert("RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage("too large", f"{exc} (our limit: {MAX_PIXELS / 1e6:.0f} MP); downscale the photo if it is real") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage("unreadable", f"{source}: {exc}") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise BadImage("too small", f"{w}x{h} px (< {MIN_SIDE} px)")
    gray = mode in ("L", "LA", "1", "I", "I;16", "F") or _channels_equal(rgb)
    return rgb, gray


def eight_bit(img: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """A 16-bit or float grayscale image (modes I;16*, I, F) as 8-bit L, its range scaled, not clipped.

    PIL's ``convert("RGB")`` clips these modes at 255, so a 16-bit scan (0-65535) turns white and its face
    is never found; here 16-bit values are divided by 257, 0-1 floats multiplied by 255."""
    if not (img.mode.startswith("I;16") or img.mode in ("I", "F")):
        return img
    values = np.asarray(img, dtype=np.float64)
    top = float(np.nanmax(values)) if values.size else 0.0
    scale = 255.0 if img.mode == "F" and top <= 1.0 else (1 / 257 if top > 255 and top <= 65535 else
                                                            (255.0 / top if top > 65535 else 1.0))
    if notes is not None and scale != 1.0:
        notes.append(f"{'float' if img.mode == 'F' else '16-bit'} grayscale scaled to 8 bits")
    return Image.fromarray(np.clip(np.nan_to_num(values * scale), 0, 255).round().astype(np.uint8))


def _too_large(w: int, h: int) -> str:
    return (f"{w}x{h} px = {w * h / 1e6:.0f} MP declared (limit {MAX_PIXELS / 1e6:.0f} MP, a possible decompression "
            "bomb); downscale the photo if it is real")


def _channels_equal(rgb: np.ndarray) -> bool:
    sample = rgb[::4, ::4].astype(np.int16)  # a subsample is enough to see colour
    return bool(
        np.abs(sample[..., 0] - sample[..., 1]).max() <= GRAY_TOLERANCE
        and np.abs(sample[..., 1] - sample[..., 2]).max() <= GRAY_TOLERANCE
    )
