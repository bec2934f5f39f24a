"""Transform-robust gradient masks: OPOM-ConvexHull and FI-UAP with expectation over transformation (EOT).

The same signed-gradient loop as :mod:`.feature_attacks`, but each round the surrogates see every protected
photo through ``draws`` random members of the differentiable transform family
(:mod:`.robust_transforms`: sub-pixel shift, small similarity, blur, down-up resize, JPEG, or none): the
gradient of a round is the sum over those views (Athalye et al., "Synthesizing robust adversarial
examples", ICML 2018), so the mask is pushed towards what survives the platform's and the attacker's
handling of the photo, not the crop as saved. The draws come from the craft's seeded generator, so the
same seed gives the same mask; each person draws from their own, so batched crafting (``craft_masks``)
gives each person the mask crafted alone.

Parameters besides the base method's: ``draws`` (views per photo and round; cost grows with it) and
``strength`` (scales every range of the family, 0-1; 0 is the base method plus its draws' cost).

Example::

    mask = create_method("opom-convex-eot", draws=8).craft_mask(faces, [create_recognizer("mobileface")], seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .base import Minimum, register_method
from .feature_attacks import FIUAP, ConvexParams, FeatureAttack, FeatureAttackParams, OPOMConvex
from .robust_transforms import Draw, TransformFamily


@dataclass
class EOTFields:
    draws: int = field(default=4, metadata={"minimum": Minimum(1)})  # views of each photo per round
    strength: float = 1.0  # every range of the family x this, in [0, 1]


@dataclass
class FeatureEOTParams(FeatureAttackParams, EOTFields):
    pass


@dataclass
class ConvexEOTParams(ConvexParams, EOTFields):
    pass


class EOTAttack(FeatureAttack):
    """A feature attack whose surrogates see each photo through ``draws`` random transforms per round."""

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self.family = TransformFamily(strength=self.params.strength)  # checks the strength (one clear error)

    def views(self, adv: torch.Tensor, generators: list[torch.Generator], per_person: int) -> tuple[torch.Tensor, int]:
        k = self.params.draws
        # person by person, each from its own generator: a batched craft draws what each craft alone draws
        draw = Draw.cat([self.family.draw(per_person * k, g) for g in generators])
        return self.family(adv.repeat_interleave(k, 0), draw), k


@register_method
class FIUAPEOT(EOTAttack, FIUAP):
    name = "fi-uap-eot"
    Params = FeatureEOTParams
    description = "FI-UAP with expectation over transformation: gradients summed over random shift/blur/resize/JPEG views."


@register_method
class OPOMConvexEOT(EOTAttack, OPOMConvex):
    name = "opom-convex-eot"
    Params = ConvexEOTParams
    description = "OPOM-ConvexHull with expectation over transformation: gradients summed over random shift/blur/resize/JPEG views."
