"""A surrogate ensemble ``a+b`` as one recognizer, for training a generator against several models at once.

Its feature is the concatenation of the members' unit-norm features, each divided by sqrt(m) (m members), so
it has unit norm and the cosine between two faces is the mean of the members' cosines: the plain adversarial
term of a generator trained against it (``cos(f(x + delta), f(x))``) is the members' terms summed (/ m), the
ensemble loss of input-diversity / LowKey-style attacks. The class-centre and hull variants then work in the
joint feature space (one hull over the concatenated features), not per member.

``create_surrogate("mobileface+dlib-resnet")`` builds it; a single name gives the zoo model itself. The card's
fingerprint names every member's, so a generator trained against the ensemble is refused once any member
changes.
"""

from __future__ import annotations

import math

import torch

from ..errors import BenchError
from ..features import model_fingerprint
from .base import ModelCard, Recognizer, weights_in_use
from .registry import card_of, create_recognizer


def ensemble_card(names: list[str]) -> ModelCard:
    cards = [card_of(n) for n in names]
    return ModelCard(
        name="+".join(names), source="ensemble of " + ", ".join(names), input_size=(112, 112),
        embedding_dim=sum(c.embedding_dim for c in cards), differentiable=all(c.differentiable for c in cards),
        licence="; ".join(f"{c.name}: {c.licence}" for c in cards),
        files=tuple(f for c in cards for f in weights_in_use(c)),
        description="mean-cosine ensemble (bench/zoo/ensemble.py)",
        extra={"fingerprint": "+".join(model_fingerprint(c) for c in cards)})


class SurrogateEnsemble(Recognizer):
    def __init__(self, members: list[Recognizer]):
        super().__init__(ensemble_card([m.name for m in members]))
        self.members = torch.nn.ModuleList(members)

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        scale = 1 / math.sqrt(len(self.members))
        return torch.cat([m(faces) * scale for m in self.members], dim=1)


def create_surrogate(source: str, device: str | torch.device = "cpu") -> Recognizer:
    """One zoo model, or the mean-cosine ensemble of ``a+b+...`` (distinct names)."""
    names = [n.strip() for n in source.split("+")]
    if len(names) == 1:
        return create_recognizer(names[0], device=device)
    if len(set(names)) != len(names) or not all(names):
        raise BenchError(f"an ensemble source names distinct models joined by '+', got {source!r}")
    return SurrogateEnsemble([create_recognizer(n, device=device) for n in names])
