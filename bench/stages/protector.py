"""The protector: a mask set at one budget, added to each person's test photos, rounded to uint8 as a
saved photo would be, then passed through a transform chain. Image quality is measured on the saved
photo (what the person publishes), before any transform. A chain with a photo-level delivery
(:mod:`.realistic`) instead puts the same mask into each original photo and gives the attacker's
re-aligned crops; its rows add the full photo's quality and the re-detection count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..budget import l2_255, protect, realised_l2, scale_to_budget
from ..data.splits import Split
from ..metrics import linf_255, psnr, ssim
from .faces import FaceBank
from .transforms import TransformChain


@dataclass
class ProtectedPhotos:
    photos: dict[str, np.ndarray]  # identity -> uint8 T x 112 x 112 x 3, after the transform chain
    quality: dict[str, float]  # l2_nominal, l2_realised(_min/_max), linf, ssim, psnr (of the saved photos)
    budget: float
    transforms: str  # the chain's spec


class Protector:
    def __init__(self, split: Split, faces: FaceBank):
        self.split, self.faces = split, faces
        self.identities = split.identities()

    def clean(self, ident: str) -> np.ndarray:
        return self.faces.faces(self.split.dataset, self.split.files(ident, "test"))

    def protect(self, masks: dict[str, torch.Tensor], budget: float, chain: TransformChain = TransformChain()) -> ProtectedPhotos:
        photos, ssims, psnrs, l2s, linfs, nominal, delivered = {}, [], [], [], [], [], []
        for ident in self.identities:
            clean = self.clean(ident)
            scaled = scale_to_budget(masks[ident], budget)
            nominal.append(float(l2_255(scaled).mean()))
            saved = protect(clean, scaled)
            ssims.append(ssim(clean, saved)); psnrs.append(psnr(clean, saved))
            l2s.append(realised_l2(clean, saved)); linfs.append(linf_255(clean, saved))
            if chain.photo is None:
                photos[ident] = chain(saved)
            else:
                prepared = self.faces.source(self.split.dataset).prepared
                photos[ident], records = chain.photo.deliver(prepared, self.split.files(ident, "test"), scaled)
                delivered += records
        l2 = np.concatenate(l2s)
        finite_psnr = [p for p in np.concatenate(psnrs) if np.isfinite(p)]
        quality = {
            "l2_nominal": float(np.mean(nominal)),  # 0 for the no-mask baseline
            "l2_realised": float(l2.mean()), "l2_realised_min": float(l2.min()), "l2_realised_max": float(l2.max()),
            "linf": float(np.concatenate(linfs).mean()),
            "ssim": float(np.concatenate(ssims).mean()),
            "psnr": float(np.mean(finite_psnr or [np.inf])),
            **(chain.photo.summary(delivered) if chain.photo is not None else {}),
        }
        return ProtectedPhotos(photos, quality, float(budget), chain.spec)
