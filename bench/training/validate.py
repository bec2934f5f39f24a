"""Validation protection during training, on training identities held back from it.

For each held-back person the generator's mask (mean perturbation over 10 inference photos, or GAP's
universal mask) is rescaled to the benchmark's L2 budget and added to 10 other photos, saved as uint8.
Each protected photo is then identified by the surrogate among the clean versions of every held-back
person's test photos (its own clean copy left out): Top-1 protection = share of probes whose nearest
gallery face is someone else. White-box and small (4 people x 10 photos by default), so it tracks
training progress; it is not the benchmark's 1:N protocol.
"""

from __future__ import annotations

import numpy as np
import torch

from ..budget import DEFAULT_BUDGET, protect, scale_to_budget
from ..zoo.base import to_canonical


def _uint8(faces: torch.Tensor) -> np.ndarray:
    return (faces * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def top1_protection(probes: torch.Tensor, gallery: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of probes whose nearest gallery feature (excluding the same index) has another label."""
    sims = probes @ gallery.T
    sims.fill_diagonal_(-float("inf"))
    return float((labels[sims.argmax(1)] != labels).float().mean())


@torch.no_grad()
def validation_protection(masks: torch.Tensor, surrogate, inference: torch.Tensor, test: torch.Tensor,
                          budget: float = DEFAULT_BUDGET) -> dict[str, float]:
    """``masks``: one ``3 x 112 x 112`` per person (``V x 3 x 112 x 112``); ``test``: ``V x T x 3 x 112 x 112``."""
    people, photos = test.shape[:2]
    clean_u8 = _uint8(test.flatten(0, 1))
    scaled = scale_to_budget(masks, budget).repeat_interleave(photos, dim=0)
    protected = protect(clean_u8, scaled)
    device = surrogate.device
    clean_f = surrogate(to_canonical(torch.from_numpy(clean_u8)).to(device)).cpu()
    prot_f = surrogate(to_canonical(torch.from_numpy(protected)).to(device)).cpu()
    labels = torch.arange(people).repeat_interleave(photos)
    return {"val_top1_protection": top1_protection(prot_f, clean_f, labels),
            "val_top1_clean_protection": top1_protection(clean_f, clean_f, labels),
            "val_cos": float(torch.nn.functional.cosine_similarity(prot_f, clean_f).mean())}
