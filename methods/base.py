"""The ``craft_mask`` interface every mask method meets, and the method registry.

A method is a class with a ``name``, a ``kind`` and a ``Params`` dataclass holding the paper's
defaults; subclasses implement only ``forward`` (torchattacks' pattern): ``craft`` validates inputs,
seeds the random generator and checks the output, so every method behaves the same at the edges.

Faces and masks live in the canonical space: float ``N x 3 x 112 x 112`` in [0, 1]. Budgets in the
paper's units (L2 on 0-255 pixels) are applied by the harness, which rescales every mask to the same
budget; a method's own constraints (e.g. OPOM's L-infinity 8/255) shape the mask before that.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import torch

from bench.errors import BenchError, ShapeError
from bench.registry import Registry
from bench.zoo.base import Recognizer, check_faces

KINDS = ("baseline", "person", "image", "universal")


@dataclasses.dataclass
class NoParams:
    pass


class MaskMethod:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "person"  # person: one mask per identity; image: one per photo
    Params: ClassVar[type] = NoParams
    needs_surrogate: ClassVar[bool] = True
    description: ClassVar[str] = ""

    def __init__(self, **overrides: Any):
        fields = {f.name for f in dataclasses.fields(self.Params)}
        unknown = set(overrides) - fields
        if unknown:
            raise BenchError(
                f"method {self.name!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                f"its parameters: {', '.join(sorted(fields)) or '(none)'}"
            )
        self.params = self.Params(**overrides)

    def config(self) -> dict[str, Any]:
        return {"method": self.name, **dataclasses.asdict(self.params)}

    def craft(self, faces: torch.Tensor, surrogates: Sequence[Recognizer] = (), *, seed: int = 0) -> torch.Tensor:
        """Person/universal methods: one ``3 x 112 x 112`` mask from a person's faces.
        Image methods: ``N x 3 x 112 x 112``, one perturbation per face."""
        check_faces(faces)
        surrogates = list(surrogates)
        if self.needs_surrogate and not surrogates:
            raise BenchError(f"method {self.name!r} needs at least one surrogate recognizer (--source)")
        for s in surrogates:
            if not s.differentiable:
                raise BenchError(f"{s.name!r} is black-box (not differentiable) and cannot be a surrogate for {self.name!r}")
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        with torch.enable_grad():
            mask = self.forward(faces, surrogates, generator).detach()
        expected = tuple(faces.shape) if self.kind == "image" else (3, *faces.shape[2:])
        if tuple(mask.shape) != expected:
            raise ShapeError(f"method {self.name!r} returned a mask of shape {tuple(mask.shape)}, expected {expected}")
        if not torch.isfinite(mask).all():
            raise BenchError(f"method {self.name!r} produced a non-finite mask")
        return mask

    def forward(self, faces: torch.Tensor, surrogates: list[Recognizer], generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


METHODS: Registry[MaskMethod] = Registry("method", "bench.methods")


def register_method(cls: type[MaskMethod]) -> type[MaskMethod]:
    if cls.kind not in KINDS:
        raise ValueError(f"{cls.__name__}.kind must be one of {KINDS}")
    METHODS.add(cls.name, cls, kind=cls.kind)
    return cls


def create_method(name: str, **overrides: Any) -> MaskMethod:
    return METHODS.create(name, **overrides)


def method_info(name: str) -> dict[str, Any]:
    cls = METHODS.entry(name).factory
    return {
        "name": name,
        "kind": cls.kind,
        "needs_surrogate": cls.needs_surrogate,
        "description": cls.description,
        "parameters": {f.name: f.default for f in dataclasses.fields(cls.Params)},
    }
