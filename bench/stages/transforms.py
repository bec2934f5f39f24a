"""What happens to a protected photo between saving it and a recognizer seeing it: JPEG, resizing,
blur, median filtering, bit-depth reduction (the usual "does the cloak survive" distortions).

A transform maps uint8 ``N x 112 x 112 x 3`` faces to the same shape, deterministically (no random
state: the same photo always gives the same output). A chain is written ``jpeg:75+resize:0.5``
(name, then its one parameter); its spec string is part of every cell key, so each chain gets its own
rows. Parameters that would leave the photo unchanged (``blur:0``, ``median:1``, ``bits:8``) are
refused: write no transform instead. Plugins register with :func:`register_transform`.

One entry is not a crop transform but a whole delivery: ``realistic`` (:mod:`bench.stages.realistic`,
registered with ``photo=True``) protects the full original photo, saves it and lets the attacker
re-detect it. It stands alone in its chain (``realistic``, ``realistic:jpeg75``); its value is a format,
not a number.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from ..errors import BenchError, ShapeError
from ..registry import Registry

TRANSFORMS: Registry[Callable[[float], "Transform"]] = Registry("transform", "bench.transforms")


@dataclass(frozen=True)
class Transform:
    name: str
    value: float
    fn: Callable[[np.ndarray, float], np.ndarray]

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.value:g}"

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        out = self.fn(faces, self.value)
        if out.shape != faces.shape or out.dtype != np.uint8:
            raise ShapeError(f"transform {self.spec} returned {out.dtype} {out.shape}, expected uint8 {faces.shape}")
        return out


def register_transform(name: str, valid: str, check: Callable[[float], bool]):
    """``fn(faces_uint8, value) -> faces_uint8``; ``check(value)`` says whether a parameter is valid (``valid`` in words)."""
    def decorator(fn):
        def make(value: float) -> Transform:
            if not check(value):
                raise BenchError(f"transform {name!r} takes {valid}, got {value:g}")
            return Transform(name, float(value), fn)

        TRANSFORMS.add(name, make, valid=valid)
        return fn

    return decorator


def _each(faces: np.ndarray, fn: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(f)).convert("RGB"), dtype=np.uint8) for f in faces]) if len(faces) else faces


@register_transform("jpeg", "a JPEG quality from 1 to 100", lambda q: 1 <= q <= 100 and float(q).is_integer())
def jpeg(faces: np.ndarray, quality: float) -> np.ndarray:
    """Saved as JPEG at ``quality`` (PIL, 4:2:0 chroma subsampling as most photo software) and decoded."""
    def roundtrip(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        return Image.open(buf)

    return _each(faces, roundtrip)


@register_transform("resize", "a scale factor in (0, 1]", lambda s: 0 < s <= 1)
def resize(faces: np.ndarray, scale: float) -> np.ndarray:
    """Downscaled by ``scale`` (bilinear, as a thumbnail) and back up to the original size."""
    def down_up(img: Image.Image) -> Image.Image:
        w, h = img.size
        small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        return small.resize((w, h), Image.BILINEAR)

    return _each(faces, down_up)


def _is_int(v: float) -> bool:
    return float(v).is_integer()


BLUR_MAX_SIGMA = 20.0  # beyond this a 112 px face is one colour; the kernel would outgrow the crop


@register_transform("blur", f"a Gaussian sigma in pixels, > 0 and at most {BLUR_MAX_SIGMA:g}",
                    lambda s: 0 < s <= BLUR_MAX_SIGMA)
def blur(faces: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` px (OpenCV, kernel 2*ceil(3 sigma)+1 wide, so
    +-3 sigma is covered; mirrored border without repeating the edge pixel, BORDER_REFLECT_101)."""
    size = 2 * int(np.ceil(3 * sigma)) + 1
    return np.stack([cv2.GaussianBlur(np.ascontiguousarray(f), (size, size), sigmaX=sigma, sigmaY=sigma,
                                      borderType=cv2.BORDER_REFLECT_101) for f in faces]) if len(faces) else faces


@register_transform("median", "an odd median-filter size from 3 to 9 (pixels)",
                    lambda k: _is_int(k) and 3 <= k <= 9 and int(k) % 2 == 1)
def median(faces: np.ndarray, size: float) -> np.ndarray:
    """Median filter over a ``size`` x ``size`` window, each channel on its own (OpenCV; replicated border)."""
    return np.stack([cv2.medianBlur(np.ascontiguousarray(f), int(size)) for f in faces]) if len(faces) else faces


@register_transform("bits", "a bit depth from 1 to 7 (an integer; 8 would change nothing)",
                    lambda b: _is_int(b) and 1 <= b <= 7)
def bits(faces: np.ndarray, depth: float) -> np.ndarray:
    """Colour-depth reduction to ``depth`` bits per channel as feature squeezing does (Xu et al., NDSS
    2018): 2^depth evenly spaced levels spanning 0-255 (black and white stay), each value rounded to the
    nearest level (``round(x / 255 * L) * 255 / L``, L = 2^depth - 1, halves to even), back in uint8."""
    levels = 2 ** int(depth) - 1
    q = np.rint(faces.astype(np.float64) * (levels / 255.0))
    return np.rint(q * (255.0 / levels)).astype(np.uint8)


@dataclass(frozen=True)
class TransformChain:
    steps: tuple[Transform, ...] = ()
    photo: object = None  # a photo-level delivery (bench.stages.realistic.Realistic) instead of crop steps

    @property
    def spec(self) -> str:
        if self.photo is not None:
            return self.photo.spec
        return "+".join(t.spec for t in self.steps)  # '' = photos as saved

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        if self.photo is not None:
            raise BenchError(f"{self.spec} acts on full photos, not on crops: the protector delivers it")
        for step in self.steps:
            faces = step(faces)
        return faces


def parse_chain(text: str) -> TransformChain:
    """'jpeg:75+resize:0.5' -> a chain; '' or 'none' -> no transform. Names and values are checked."""
    text = text.strip()
    if text in ("", "none"):
        return TransformChain()
    steps = []
    parts = text.split("+")
    for part in parts:
        name, _, value = part.strip().partition(":")
        entry = TRANSFORMS.entry(name.strip())
        if entry.info.get("photo"):
            if len(parts) > 1:
                raise BenchError(f"transform {name.strip()!r} is a whole delivery (full photo protected, saved, re-detected) "
                                 f"and stands alone in its chain: write {name.strip()}:jpeg75 for a JPEG-saved photo, got {text!r}")
            return TransformChain(photo=entry.factory(value.strip()))
        try:
            number = float(value)
        except ValueError:
            raise BenchError(f"transform {name!r} needs a value, {entry.info['valid']}: write {name}:VALUE, got {part!r}") from None
        steps.append(entry.factory(number))
    return TransformChain(tuple(steps))
