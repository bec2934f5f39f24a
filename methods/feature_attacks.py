"""Gradient-based feature-space masks: FI-UAP, OPOM (class centre / affine hull / convex hull), FIM.

All share one signed-gradient loop in 0-255 pixel units (the official OPOM settings: L-infinity
eps 8, step 1, 16 rounds). Each round perturbs every inference photo by the current mask, takes one
signed-gradient step per photo that *increases* the distance between its feature and the person's
clean feature set, and (for person-specific masks) averages the per-photo perturbations back into one
mask clipped to eps.

The start is uniform noise in [-start, start]. The official code uses start = eps = 8; that noise
alone has L2 ~900 and 16 unit steps cannot overwrite it, so once the harness rescales every mask to
the common L2 budget most of the budget is spent on noise (measured on 16 celebrities, dlib-resnet
white-box at L2 1,200: opom-convex Top-1 protection 76% with start 8, 97% with start 1). A start is
still needed: FI-UAP's and the affine hull's distance is zero with zero gradient at the clean photo,
so from exactly zero they never move. The default start = 1 (one step) breaks that symmetry and
costs ~1/8 of the official noise (fi-uap 94%, opom-affine 94% in the same test).
``-p opom-convex.start=8`` restores the official start.

The distance is the squared L2 distance between the unit-norm feature and its projection onto
(FI-UAP) the photo's own clean feature, or (OPOM) the person's class centre / affine hull / convex
hull of clean inference features; projections are constants (envelope-theorem gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import MaskMethod, register_method
from .subspace import subspace_loss

PIXEL = 255.0


@dataclass
class FeatureAttackParams:
    eps: float = 8.0  # L-infinity bound, 0-255 pixels
    step: float = 1.0  # signed-gradient step, 0-255 pixels
    steps: int = 16
    start: float = 1.0  # uniform random start amplitude, 0-255 pixels (official: 8; see the module docstring)


@dataclass
class ConvexParams(FeatureAttackParams):
    warmup: int = 5  # first rounds use class-centre weights: a start inside the hull has zero gradient


def _clean_features(faces: torch.Tensor, surrogates) -> list[torch.Tensor]:
    with torch.no_grad():
        return [s(faces) for s in surrogates]


class FeatureAttack(MaskMethod):
    """The shared loop; subclasses choose the projection (``subspace``) and whether the mask is shared."""

    Params = FeatureAttackParams
    subspace: str = "self"  # "self" = each photo's own clean feature (FI-UAP, FIM)

    def projection_kind(self, step: int) -> str:
        return self.subspace

    def views(self, adv: torch.Tensor, generators: list[torch.Generator], per_person: int) -> tuple[torch.Tensor, int]:
        """What the surrogates see of the protected photos ``adv`` (``per_person`` photos of each of
        ``len(generators)`` people, person by person), and how many views each photo has: here the photos
        themselves. The EOT variants (:mod:`.eot_attacks`) return each photo through random transforms."""
        return adv, 1

    def loss(self, feats: list[torch.Tensor], clean: list[torch.Tensor], step: int) -> torch.Tensor:
        """Summed over photos and surrogates (the per-photo gradient must not shrink with n). ``feats`` may hold
        several views of each photo, consecutive (``views``): each is compared with its photo's clean feature."""
        total = 0.0
        kind = self.projection_kind(step)
        for f, c in zip(feats, clean):
            if kind == "self":
                total = total + (f - c.repeat_interleave(len(f) // len(c), 0)).square().sum()
            else:
                total = total + subspace_loss(f, c, kind, reduction="sum")
        return total

    def forward_people(self, faces, surrogates, generators):
        """``forward`` for P people at once (``faces``: P x n x 3 x H x W): each round is one forward and one
        backward over all P x n photos. The loss is the sum of the people's losses and each mask only moves
        its own person's photos, so each person's gradient, step and mask are those of ``forward``."""
        if self.kind != "person":
            raise NotImplementedError("batched crafting is for person masks")
        p = self.params
        eps, step = p.eps / PIXEL, p.step / PIXEL
        people, n = faces.shape[:2]
        delta = torch.stack([(torch.rand(faces.shape[2:], generator=g) * 2 - 1) * (p.start / PIXEL) for g in generators])
        delta = delta.to(faces.device, faces.dtype)
        flat = faces.flatten(0, 1)
        clean = [c.reshape(people, n, -1) for c in _clean_features(flat, surrogates)]
        for t in range(p.steps):
            adv = (faces + delta[:, None]).clamp(0, 1).flatten(0, 1).requires_grad_(True)
            seen, views = self.views(adv, generators, n)
            feats = [s(seen).reshape(people, n * views, -1) for s in surrogates]
            loss = self.loss_people(feats, clean, t)
            (grad,) = torch.autograd.grad(loss, adv)
            stepped = (adv.detach() + step * grad.sign()).clamp(0, 1).reshape(faces.shape) - faces
            delta = stepped.mean(1).clamp(-eps, eps)
        return delta

    def loss_people(self, feats: list[torch.Tensor], clean: list[torch.Tensor], step: int) -> torch.Tensor:
        """``loss`` summed over people (``P x n x D`` features per surrogate): each person's photos against their
        own clean features, one small projection per person as in ``forward``."""
        return sum(self.loss([f[i] for f in feats], [c[i] for c in clean], step) for i in range(feats[0].shape[0]))

    def forward(self, faces, surrogates, generator):
        p = self.params
        eps, step = p.eps / PIXEL, p.step / PIXEL
        shared = self.kind == "person"
        shape = faces.shape[1:] if shared else faces.shape
        delta = (torch.rand(shape, generator=generator) * 2 - 1) * (p.start / PIXEL)
        delta = delta.to(faces.device, faces.dtype)
        clean = _clean_features(faces, surrogates)
        for t in range(p.steps):
            adv = (faces + delta).clamp(0, 1).requires_grad_(True)
            seen, _ = self.views(adv, [generator], len(faces))
            loss = self.loss([s(seen) for s in surrogates], clean, t)
            (grad,) = torch.autograd.grad(loss, adv)
            stepped = (adv.detach() + step * grad.sign()).clamp(0, 1) - faces
            delta = (stepped.mean(0) if shared else stepped).clamp(-eps, eps)
        return delta


@register_method
class FIUAP(FeatureAttack):
    name = "fi-uap"
    kind = "person"
    subspace = "self"
    description = "FI-UAP (paper Eq. 20): one mask pushing each photo's feature from its own clean feature."


@register_method
class OPOMCenter(FeatureAttack):
    name = "opom-center"
    kind = "person"
    subspace = "center"
    description = "OPOM-ClassCenter: one mask pushing features from the person's mean clean feature."


@register_method
class OPOMAffine(FeatureAttack):
    name = "opom-affine"
    kind = "person"
    subspace = "affine"
    description = "OPOM-AffineHull: one mask pushing features out of the affine hull of clean features."


@register_method
class OPOMConvex(FeatureAttack):
    name = "opom-convex"
    kind = "person"
    subspace = "convex"
    Params = ConvexParams
    description = "OPOM-ConvexHull: one mask pushing features out of the convex hull of clean features."

    def projection_kind(self, step: int) -> str:
        return "center" if step < self.params.warmup else "convex"


@register_method
class FIM(FeatureAttack):
    name = "fim"
    kind = "image"
    subspace = "self"
    description = "FIM: image-specific iterative feature attack (one perturbation per photo)."
