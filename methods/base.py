"""The ``craft_mask`` interface every mask method meets, and the method registry.

A method is a class with a ``name``, a ``kind`` and a ``Params`` dataclass holding the paper's
defaults; subclasses implement only ``forward`` (torchattacks' pattern): ``craft_mask`` validates
inputs, seeds the random generator and checks the output, so every method behaves the same at the
edges. ``craft_mask`` is the entry point to call::

    from bench.zoo import create_recognizer
    from methods import create_method

    mask = create_method("opom-convex").craft_mask(faces, [create_recognizer("mobileface")], seed=0)

``craft`` is the same call under its earlier name, kept for existing callers.

Faces and masks live in the canonical space: float ``N x 3 x 112 x 112`` in [0, 1]. Budgets in the
paper's units (L2 on 0-255 pixels) are applied by the harness, which rescales every mask to the same
budget; a method's own constraints (e.g. OPOM's L-infinity 8/255) shape the mask before that.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any, Callable, ClassVar, Sequence

import torch

from bench.errors import BenchError, ShapeError
from bench.registry import Registry
from bench.zoo.base import Recognizer, check_faces

# A method's scope: baseline (no optimisation), person (one mask per identity, from its inference
# photos), image (one per photo), universal (one for everyone: crafted once per run)
Scope = typing.Literal["baseline", "person", "image", "universal"]
KINDS: tuple[str, ...] = typing.get_args(Scope)


@dataclasses.dataclass
class NoParams:
    pass


class MaskMethod:
    name: ClassVar[str] = ""
    kind: ClassVar[Scope] = "person"
    Params: ClassVar[type] = NoParams
    needs_surrogate: ClassVar[bool] = True
    description: ClassVar[str] = ""

    def __init__(self, **overrides: Any):
        self.params = self.Params(**validate_overrides(type(self), overrides))

    def config(self, source: str | None = None) -> dict[str, Any]:
        """Everything that defines the masks besides the inputs: keys the mask bank and result cells.
        Trained methods add the checksum of the weights they use for ``source``."""
        return {"method": self.name, **dataclasses.asdict(self.params)}

    def trained_against(self, source: str) -> list[str]:
        """The zoo models this method's masks were optimised against with ``source`` as the surrogate:
        a target running one of their networks is white-box. Methods that carry weights trained against
        another model override this."""
        return [] if not self.needs_surrogate or source in ("", "-") else source.split("+")

    def craft_mask(self, faces: torch.Tensor, surrogates: Sequence[Recognizer] = (), *, seed: int = 0) -> torch.Tensor:
        """The mask for ``faces`` (canonical ``N x 3 x 112 x 112`` in [0, 1]) crafted against ``surrogates``.

        Person/universal methods: one ``3 x 112 x 112`` mask from a person's faces.
        Image methods: ``N x 3 x 112 x 112``, one perturbation per face. The same ``seed`` gives the
        same mask; the harness rescales it to the run's budget afterwards."""
        check_faces(faces)
        surrogates = self._checked_surrogates(surrogates)
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        with torch.enable_grad():
            mask = self.forward(faces, surrogates, generator).detach()
        return self._checked_output(mask, tuple(faces.shape) if self.kind == "image" else (3, *faces.shape[2:]))

    def craft_masks(self, people: Sequence[torch.Tensor], surrogates: Sequence[Recognizer] = (), *,
                    seeds: Sequence[int]) -> list[torch.Tensor]:
        """Person methods: one mask per person (``people[i]``: that person's ``n x 3 x 112 x 112`` faces,
        ``seeds[i]`` its seed), the masks :meth:`craft_mask` gives one person at a time. A method whose
        ``forward_people`` is defined crafts them in one batched forward/backward per step (every person
        the same number of faces), which is what a GPU needs and what a CPU's larger kernels like; the
        masks then agree with the one-at-a-time ones to float rounding (tests/test_craft_mask.py)."""
        if len(people) != len(seeds):
            raise BenchError(f"craft_masks: {len(people)} people but {len(seeds)} seeds")
        batched = (self.kind == "person" and type(self).forward_people is not MaskMethod.forward_people
                   and len(people) > 1 and len({tuple(f.shape) for f in people}) == 1)
        if not batched:
            return [self.craft_mask(f, surrogates, seed=s) for f, s in zip(people, seeds)]
        for f in people:
            check_faces(f)
        surrogates = self._checked_surrogates(surrogates)
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        with torch.enable_grad():
            masks = self.forward_people(torch.stack(list(people)), surrogates, generators).detach()
        return list(self._checked_output(masks, (len(people), 3, *people[0].shape[2:])).unbind(0))

    def _checked_output(self, mask: torch.Tensor, expected: tuple[int, ...]) -> torch.Tensor:
        """What ``forward`` / ``forward_people`` returned, if it has the ``expected`` shape and is finite."""
        if tuple(mask.shape) != expected:
            raise ShapeError(f"method {self.name!r} returned a mask of shape {tuple(mask.shape)}, expected {expected}")
        if not torch.isfinite(mask).all():
            raise BenchError(f"method {self.name!r} produced a non-finite mask")
        return mask

    def _checked_surrogates(self, surrogates: Sequence[Recognizer]) -> list[Recognizer]:
        surrogates = list(surrogates)
        if self.needs_surrogate and not surrogates:
            raise BenchError(f"method {self.name!r} needs at least one surrogate recognizer (--source)")
        for s in surrogates:
            if not s.differentiable:
                raise BenchError(f"{s.name!r} is black-box (not differentiable) and cannot be a surrogate for {self.name!r}")
        return surrogates

    def craft(self, faces: torch.Tensor, surrogates: Sequence[Recognizer] = (), *, seed: int = 0) -> torch.Tensor:
        """The earlier name of :meth:`craft_mask`; calls it, so a subclass overriding ``craft_mask``
        is honoured through both names."""
        return self.craft_mask(faces, surrogates, seed=seed)

    def forward(self, faces: torch.Tensor, surrogates: list[Recognizer], generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # Optional: ``(P x n x 3 x H x W faces, surrogates, one generator per person) -> P x 3 x H x W masks``.
    forward_people = None


@dataclasses.dataclass(frozen=True)
class Minimum:
    """The lower bound of a numeric parameter: ``value`` itself allowed unless ``strict``."""

    value: float
    strict: bool = False

    def admits(self, x: float) -> bool:
        return x > self.value if self.strict else x >= self.value

    def __str__(self) -> str:
        return f"{'>' if self.strict else '>='} {self.value:g}"


# Every numeric parameter of the built-in methods is a count, size, weight or amplitude, meaningless
# below zero; a loop needs at least one step. A Params field states another bound with
# ``dataclasses.field(metadata={"minimum": Minimum(...)})``.
DEFAULT_MINIMUM = Minimum(0)
MINIMUM_BY_NAME = {"steps": Minimum(1)}


@dataclasses.dataclass(frozen=True)
class ParamType:
    """How an override is checked against a Params field's annotation, and stored."""

    accepts: Callable[[Any], bool]
    described: str
    convert: Callable[[Any], Any]
    numeric: bool


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)  # True is an int to Python, not to a user


PARAM_TYPES: dict[type, ParamType] = {
    bool: ParamType(lambda x: isinstance(x, bool), "true or false", bool, numeric=False),
    # 1.5 (or 2.0) for a step count is a mistake, not something to round
    int: ParamType(lambda x: _is_number(x) and isinstance(x, numbers.Integral), "an integer", int, numeric=True),
    # stored as float, so eps=8 and the default eps=8.0 give the same config (and the same result cells)
    float: ParamType(_is_number, "a finite number", float, numeric=True),
    str: ParamType(lambda x: isinstance(x, str), "a string", str, numeric=False),
}


def _minimum(field: dataclasses.Field) -> Minimum:
    return field.metadata.get("minimum") or MINIMUM_BY_NAME.get(field.name, DEFAULT_MINIMUM)


def _check_value(method: str, field: dataclasses.Field, kind: ParamType, value: Any) -> Any:
    bound = _minimum(field) if kind.numeric else None
    valid = kind.accepts(value) and (bound is None or (math.isfinite(value) and bound.admits(value)))
    if not valid:
        wanted = f"{kind.described} {bound}" if bound else kind.described
        raise BenchError(f"method {method!r}: parameter {field.name} must be {wanted}, got {value!r}")
    return kind.convert(value)


def validate_overrides(cls: type[MaskMethod], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` checked against ``cls.Params`` (known field, the field's type, finite, in range) and
    converted to the field's type; raises BenchError saying what is wrong and what is valid. Fields
    whose annotation is not a plain bool/int/float/str are passed through unchecked."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise BenchError(
            f"method {cls.name!r} has no parameter(s) {', '.join(sorted(unknown))}; "
            f"its parameters: {', '.join(sorted(fields)) or '(none)'}"
        )
    hints = typing.get_type_hints(cls.Params)  # resolves the string annotations of `from __future__ import annotations`
    checked = {}
    for name, value in overrides.items():
        kind = PARAM_TYPES.get(hints.get(name))
        checked[name] = _check_value(cls.name, fields[name], kind, value) if kind else value
    return checked


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
