"""Mask budgets in the paper's units, and protecting a face the way a saved photo would be.

Budgets are L2 norms on the 0-255 pixel scale (the paper's 1,200); this module is the one place
where they are converted to the canonical [0, 1] face space.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ShapeError

PIXEL_SCALE = 255.0
DEFAULT_BUDGET = 1200.0


def l2_255(mask: torch.Tensor) -> torch.Tensor:
    """L2 norm of each mask on the 0-255 scale (last three dims are one mask)."""
    return (mask * PIXEL_SCALE).flatten(-3).norm(dim=-1)


def scale_to_budget(mask: torch.Tensor, budget: float) -> torch.Tensor:
    """Rescale mask(s) to L2 = ``budget`` (0-255 units). An all-zero mask stays zero."""
    norm = l2_255(mask)
    factor = torch.where(norm > 0, budget / norm.clamp_min(1e-12), torch.zeros_like(norm))
    return mask * factor.reshape(*factor.shape, 1, 1, 1)


def protect(faces_uint8: np.ndarray, mask: torch.Tensor) -> np.ndarray:
    """Add a mask to ``N x 112 x 112 x 3`` uint8 faces, clip to the pixel range and round to uint8.

    ``mask``: ``3 x H x W`` (one per person, broadcast) or ``N x 3 x H x W`` (one per image), canonical units.
    """
    faces = torch.from_numpy(np.ascontiguousarray(faces_uint8)).permute(0, 3, 1, 2).double()
    mask = mask.double()
    if mask.shape[-3:] != faces.shape[-3:] or (mask.dim() == 4 and mask.shape[0] != faces.shape[0]):
        raise ShapeError(f"mask of shape {tuple(mask.shape)} does not fit faces of shape {tuple(faces.shape)}")
    out = (faces + mask * PIXEL_SCALE).clamp(0, 255).round()
    return out.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def realised_l2(clean_uint8: np.ndarray, protected_uint8: np.ndarray) -> np.ndarray:
    """Per-image L2 (0-255) of what actually changed after clipping and quantisation."""
    diff = protected_uint8.astype(np.float64) - clean_uint8.astype(np.float64)
    return np.sqrt((diff.reshape(len(diff), -1) ** 2).sum(1))
