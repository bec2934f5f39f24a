"""Reading and writing full photos the way a person (and an attacker) would.

Reading applies the EXIF orientation (``PIL.ImageOps.exif_transpose``: the pixels are turned the way
the photo is shown), converts an embedded colour profile to sRGB, drops any alpha channel, and keeps
nothing else: no EXIF, no XMP, no GPS, no ICC profile reaches the pixels we return or the files we
write. Writing builds a fresh image from the pixels only, so no metadata of the original can leak into
an output. The same safety checks as the dataset reader apply (unreadable, truncated, tiny, or
declaring more than ``MAX_PIXELS`` pixels: a :class:`BadImage`, never a crash).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.images import MAX_PIXELS, MIN_SIDE, BadImage, _channels_equal, _too_large, eight_bit

FORMATS = {"png": ".png", "jpeg": ".jpg"}
DEFAULT_JPEG_QUALITY = 95
ORIENTATION_TAG = 0x0112


@dataclass
class LoadedPhoto:
    pixels: np.ndarray  # H x W x 3 uint8 RGB, upright (EXIF orientation applied)
    format: str  # what the file was: JPEG, PNG, ...
    grayscale: bool
    # what was done to the file's pixels on the way in, and which metadata was dropped: short fixed phrases,
    # never a metadata value (an EXIF field can hold a name, a serial number or a GPS position)
    notes: list[str] = field(default_factory=list)


def read_photo(data: bytes, source: str = "<bytes>") -> LoadedPhoto:
    """Decode photo bytes as they are shown: upright, sRGB, RGB. Raises BadImage."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # the header only
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise BadImage("too large", _too_large(w, h))
                img.load()  # full decode: truncated files fail here
                fmt, mode = img.format or "?", img.mode
                exif = img.getexif()
                orientation = int(exif.get(ORIENTATION_TAG, 1) or 1) if exif else 1
                icc = img.info.get("icc_profile")
                has_alpha = "A" in mode or "transparency" in img.info
                if exif or any(k in img.info for k in ("exif", "xmp", "XML:com.adobe.xmp", "comment")):
                    notes.append("metadata (EXIF/XMP/comments) not copied")
                upright = ImageOps.exif_transpose(img) if orientation != 1 else img
                if orientation != 1:
                    notes.append(f"EXIF orientation {orientation} applied")
                if has_alpha:
                    notes.append("transparency dropped")
                rgb_img = eight_bit(upright, notes).convert("RGB")
                if icc:
                    rgb_img = _to_srgb(rgb_img, icc, notes)
                rgb = np.array(rgb_img, dtype=np.uint8)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage("too large", f"{exc} (our limit: {MAX_PIXELS / 1e6:.0f} MP)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError) as exc:
        raise BadImage("unreadable", f"not an image PIL can decode ({type(exc).__name__})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise BadImage("too small", f"{w}x{h} px (< {MIN_SIDE} px)")
    gray = mode in ("L", "LA", "1", "I", "I;16", "F") or _channels_equal(rgb)
    return LoadedPhoto(rgb, fmt, gray, notes)


def _to_srgb(img: Image.Image, icc: bytes, notes: list[str]) -> Image.Image:
    """Pixels in the embedded colour profile -> sRGB, so dropping the profile does not shift colours."""
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        notes.append("colour profile converted to sRGB")
        return out if out is not None else img
    except Exception:  # a broken or unsupported profile: keep the pixels as stored, and say so
        notes.append("colour profile could not be read: pixels kept as stored, profile dropped")
        return img


def encode_photo(photo: np.ndarray, fmt: str = "png", quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """uint8 H x W x 3 RGB -> PNG or JPEG bytes holding the pixels and nothing else (no metadata)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    photo = np.ascontiguousarray(photo, dtype=np.uint8)
    img = Image.fromarray(photo, "RGB")  # a fresh image: no info dict, no EXIF, no ICC
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=6)
    else:
        # PIL's default chroma subsampling (4:2:0), as most platforms re-encode uploads
        img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def save_and_reload(photo: np.ndarray, fmt: str = "png", quality: int = DEFAULT_JPEG_QUALITY) -> tuple[bytes, np.ndarray]:
    """What publishing does to the pixels: encode, then decode what was written."""
    data = encode_photo(photo, fmt, quality)
    return data, read_photo(data).pixels
