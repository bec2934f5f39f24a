"""Reference points every method must beat: no mask, and a random mask at the same budget."""

from __future__ import annotations

import torch

from .base import MaskMethod, register_method


@register_method
class NoMask(MaskMethod):
    name = "none"
    kind = "baseline"
    needs_surrogate = False
    description = "No mask: the clean identification rate (protection should be ~0%)."

    def forward(self, faces, surrogates, generator):
        return torch.zeros(faces.shape[1:], dtype=faces.dtype)


@register_method
class RandomNoise(MaskMethod):
    name = "noise"
    kind = "baseline"
    needs_surrogate = False
    description = "Gaussian noise (one mask per person); the harness scales it to the common L2 budget."

    def forward(self, faces, surrogates, generator):
        return torch.randn(faces.shape[1:], generator=generator, dtype=torch.float32)
