"""Losses of the generator methods (AdvFaces stage I, AdvCloak stage II, GAP), shared by training and tests.

Conventions (``../shared/ADVCLOAK.md``): perturbations ``delta`` are in canonical [0, 1] pixel units;
features are L2-normalised; the adversarial term is a cosine similarity that the generator
*minimises* (the papers write it as a distance to maximise; the official code minimises cosine).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .subspace import project

VARIANTS = ("plain", "center", "affine", "convex")


def norm_hinge(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """AdvFaces' perturbation term: mean over the batch of max(||delta||_2, eps); eps=3 in [0,1] units
    (~765 on 0-255) leaves a small mask unpenalised."""
    return delta.flatten(1).norm(dim=1).clamp_min(eps).mean()


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN term: the generator wants its protected faces judged real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, generator: torch.Generator | None,
                           noisy_labels: bool = True, flip: float = 0.05) -> torch.Tensor:
    """BCE on real vs protected faces. AdvCloak's code uses noisy labels (real ~U[0.9, 1], fake ~U[0, 0.1])
    with 5% of the labels flipped; ``noisy_labels=False`` gives AdvFaces' hard labels."""
    def labels(like: torch.Tensor, real: bool) -> torch.Tensor:
        if not noisy_labels:
            return torch.full_like(like, 1.0 if real else 0.0)
        u = torch.rand(like.shape, generator=generator).to(like)
        lab = 0.9 + 0.1 * u if real else 0.1 * u
        flipped = torch.rand(like.shape, generator=generator).to(like) < flip
        return torch.where(flipped, 1 - lab, lab)

    return (F.binary_cross_entropy_with_logits(real_logits, labels(real_logits, True))
            + F.binary_cross_entropy_with_logits(fake_logits, labels(fake_logits, False)))


def anchor_points(adv: torch.Tensor, clean: torch.Tensor, variant: str) -> torch.Tensor:
    """The point each protected feature is pushed away from, for one person (``n x D`` each).

    plain: the photo's own clean feature; center: the person's mean clean feature; affine / convex:
    the projection of the protected feature onto the affine / convex hull of the person's clean
    features (solved without gradient: the hull weights are constants, as in the paper's code)."""
    if variant == "plain":
        return clean
    if variant == "center":
        return clean.mean(0, keepdim=True).expand_as(clean)
    if variant in ("affine", "convex"):
        with torch.no_grad():
            return project(adv.detach(), clean.detach(), variant).point.to(adv.dtype)
    raise ValueError(f"unknown adversarial variant {variant!r}; choose from {', '.join(VARIANTS)}")


def adversarial_cosine(adv: torch.Tensor, clean: torch.Tensor, variant: str = "plain") -> torch.Tensor:
    """Mean cosine between protected features and their anchor points (lower = better protection)."""
    return F.cosine_similarity(adv, anchor_points(adv, clean, variant), dim=-1).mean()
