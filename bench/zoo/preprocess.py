"""The preprocessing spec of user models: how a canonical face becomes a network's input.

Order (differentiable): resize to ``input_size``, reorder to ``colour``, multiply by ``scale`` (1 or
255), then ``(x - mean) / std`` with mean/std in the channel order the network sees, then ``layout``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BenchError
from .base import CANONICAL_SIZE

COLOURS = ("rgb", "bgr")
SCALES = (1.0, 255.0)
LAYOUTS = ("nchw", "nhwc")
RESIZE_MODES = ("bilinear", "bicubic", "area", "nearest")


def _triple(value: Any, what: str) -> tuple[float, float, float]:
    values = [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise BenchError(f"preprocessing {what} needs 1 or 3 values, got {len(values)}")
    return tuple(values)  # type: ignore[return-value]


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    value = str(value).lower()
    if value not in allowed:
        raise BenchError(f"preprocessing {what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def parse_size(value: Any) -> tuple[int, int]:
    """112, "112", "112x96", (112, 96) -> (H, W)."""
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
    else:
        parts = [value] if isinstance(value, int) else list(value)
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise BenchError(f"input size must be HxW (e.g. 112x112), got {value!r}") from None
    size = size * 2 if len(size) == 1 else size
    if len(size) != 2 or min(size) < 1:
        raise BenchError(f"input size must be HxW (e.g. 112x112), got {value!r}")
    return size  # type: ignore[return-value]


@dataclass(frozen=True)
class Preprocess:
    """How the canonical face becomes the network's input (see the module docstring for the order)."""

    input_size: tuple[int, int] = (CANONICAL_SIZE, CANONICAL_SIZE)
    colour: str = "rgb"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "nchw"
    resize: str = "bilinear"

    def __post_init__(self) -> None:
        # normalise once so equal specs compare, hash and serialise equal
        fix = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        fix("input_size", parse_size(self.input_size))
        fix("colour", _choice(self.colour, COLOURS, "colour"))
        fix("layout", _choice(self.layout, LAYOUTS, "layout"))
        fix("resize", _choice(self.resize, RESIZE_MODES, "resize"))
        fix("mean", _triple(self.mean, "mean"))
        fix("std", _triple(self.std, "std"))
        if float(self.scale) not in SCALES:
            raise BenchError(f"preprocessing scale must be 1 (pixels in [0, 1]) or 255 (pixels in [0, 255]), got {self.scale}")
        fix("scale", float(self.scale))
        if any(s == 0 for s in self.std):
            raise BenchError("preprocessing std must not contain 0")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Preprocess":
        return cls().merged(data)

    def merged(self, overrides: Mapping[str, Any]) -> "Preprocess":
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            fields = ", ".join(f.name for f in dataclasses.fields(self))
            raise BenchError(f"unknown preprocessing field(s) {', '.join(sorted(unknown))}; fields: {fields}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def describe(self) -> str:
        h, w = self.input_size
        fmt = lambda t: ",".join(f"{v:g}" for v in t)  # noqa: E731
        return (f"{h}x{w} {self.resize}, {self.colour.upper()}, x{self.scale:g}, (x - [{fmt(self.mean)}]) / "
                f"[{fmt(self.std)}], {self.layout.upper()}")


def resize_faces(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")  # PIL/OpenCV's pixel-centre convention
    # antialias when shrinking, as PIL and cv2.INTER_AREA-style pipelines do; differentiable either way
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=shrink)


class ToNetworkInput(nn.Module):
    """Canonical faces -> the network's input tensor, differentiably (a :class:`Preprocess` as a module)."""

    def __init__(self, spec: Preprocess):
        super().__init__()
        self.spec = spec
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = resize_faces(faces, self.spec.input_size, self.spec.resize)
        if self.spec.colour == "bgr":
            x = x.flip(1)
        x = (x * self.spec.scale - self.mean) / self.std
        return x.permute(0, 2, 3, 1).contiguous() if self.spec.layout == "nhwc" else x

    def extra_repr(self) -> str:
        return self.spec.describe()
