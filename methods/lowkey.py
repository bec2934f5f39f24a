"""LowKey (Cherepanova et al., ICLR 2021): image-specific masks against an ensemble of recognizers.

Each photo gets its own perturbation maximising, over every surrogate, the feature distance of the
perturbed photo *and of a Gaussian-blurred copy of it* from the clean feature (robustness to the
smoothing a platform may apply), minus a perceptual penalty. LowKey's perceptual term is LPIPS; its
AlexNet/VGG backbones are a run-time download that cannot happen offline, so this implementation
uses 1 - SSIM instead (documented in the README). Steps are signed gradients in [0, 1] units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import MaskMethod, Minimum, register_method
from .perceptual import gaussian_blur, ssim


@dataclass
class LowKeyParams:
    steps: int = 50
    step: float = 0.0025  # per-step change, [0, 1] pixel units (LowKey's learning rate)
    perceptual_weight: float = 5.0  # on 1 - SSIM (LowKey weights LPIPS by 5)
    blur_size: int = field(default=7, metadata={"minimum": Minimum(1)})  # Gaussian window width, pixels
    blur_sigma: float = field(default=3.0, metadata={"minimum": Minimum(0, strict=True)})  # sigma 0 divides by zero
    eps: float = 16.0  # L-infinity bound, 0-255 pixels: keeps the search where the harness' budget lands


@register_method
class LowKey(MaskMethod):
    name = "lowkey"
    kind = "image"
    Params = LowKeyParams
    description = "LowKey: image-specific, surrogate ensemble, Gaussian-smoothed copies, SSIM perceptual term."

    def forward(self, faces, surrogates, generator):
        p = self.params
        eps = p.eps / 255.0
        with torch.no_grad():
            clean = [s(faces) for s in surrogates]
        delta = torch.zeros_like(faces)
        for _ in range(p.steps):
            delta.requires_grad_(True)
            adv = (faces + delta).clamp(0, 1)
            blurred = gaussian_blur(adv, p.blur_size, p.blur_sigma)
            push = sum((s(adv) - c).square().sum() + (s(blurred) - c).square().sum() for s, c in zip(surrogates, clean))
            objective = push / len(surrogates) - p.perceptual_weight * (1 - ssim(faces, adv)).sum()
            (grad,) = torch.autograd.grad(objective, delta)
            delta = (delta.detach() + p.step * grad.sign()).clamp(-eps, eps)
            delta = (faces + delta).clamp(0, 1) - faces
        return delta.detach()
