"""What happens to a protected photo between saving it and a recognizer seeing it (JPEG, resizing).

A transform maps uint8 ``N x 112 x 112 x 3`` faces to the same shape. A chain is written
``jpeg:75+resize:0.5`` (name, then its one parameter); its spec string is part of every cell key, so
each chain gets its own rows. Plugins register with :func:`register_transform`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

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


@dataclass(frozen=True)
class TransformChain:
    steps: tuple[Transform, ...] = ()

    @property
    def spec(self) -> str:
        return "+".join(t.spec for t in self.steps)  # '' = photos as saved

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        for step in self.steps:
            faces = step(faces)
        return faces


def parse_chain(text: str) -> TransformChain:
    """'jpeg:75+resize:0.5' -> a chain; '' or 'none' -> no transform. Names and values are checked."""
    text = text.strip()
    if text in ("", "none"):
        return TransformChain()
    steps = []
    for part in text.split("+"):
        name, _, value = part.strip().partition(":")
        entry = TRANSFORMS.entry(name.strip())
        try:
            number = float(value)
        except ValueError:
            raise BenchError(f"transform {name!r} needs a value, {entry.info['valid']}: write {name}:VALUE, got {part!r}") from None
        steps.append(entry.factory(number))
    return TransformChain(tuple(steps))
