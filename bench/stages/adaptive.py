"""An adaptive attacker: one who knows the masking method and holds protected photos of *other* people
together with their clean photos, and learns to undo the mask in feature space.

Protocol ``adaptive-ridge``: people are split into ``folds``; for each fold the attacker fits a ridge
regression from protected-photo features to the same photo's clean features on every *other* fold's
people (the photos they were given), then maps this fold's protected probes through it (re-normalised)
and runs the paper's probe-side identification against the clean gallery. No photo or person is ever
used to fit the map that scores it. Protection that survives this is protection against an attacker
who can collect (protected, clean) pairs, e.g. from people who published both.

This is a linear, feature-space attacker (cheap, a lower bound on what an adaptive attacker achieves);
fine-tuning the recognizer itself on protected photos is stronger and not done here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..protocol import identification
from .evaluator import CleanGallery
from .protocols import Protocol, register_protocol


def ridge_map(protected: np.ndarray, clean: np.ndarray, strength: float) -> np.ndarray:
    """``A`` minimising ||protected A - clean||^2 + lam ||A - I||^2, with lam = ``strength`` x the mean
    squared feature norm; the pull towards the identity keeps an unfitted direction as it was."""
    p, c = protected.astype(np.float64), clean.astype(np.float64)
    d = p.shape[1]
    lam = strength * float((p**2).sum(1).mean())
    return np.linalg.solve(p.T @ p + lam * np.eye(d), p.T @ c + lam * np.eye(d))


@register_protocol
@dataclass
class AdaptiveRidge(Protocol):
    """Probe-side identification after an attacker's ridge map from protected to clean features (folds over people)."""

    name: ClassVar[str] = "adaptive-ridge"
    version: ClassVar[str] = "adaptive-ridge-v1"
    folds: int = 5
    strength: float = 0.1

    def key(self, gallery_name: str) -> str:
        return f"{super().key(gallery_name)}/folds{self.folds}/ridge{self.strength:g}"

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray]) -> dict:
        ids = sorted(probes)
        fold_of = {ident: i % self.folds for i, ident in enumerate(ids)}
        mapped: dict[str, np.ndarray] = {}
        for fold in range(min(self.folds, len(ids))):
            train = [i for i in ids if fold_of[i] != fold]
            test = [i for i in ids if fold_of[i] == fold]
            if not train:  # a single person: nobody else's photos to learn from
                mapped.update({i: probes[i] for i in test})
                continue
            a = ridge_map(np.concatenate([probes[i] for i in train]), np.concatenate([clean.people[i] for i in train]),
                          self.strength)
            for i in test:
                m = probes[i].astype(np.float64) @ a
                mapped[i] = (m / np.linalg.norm(m, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
        ident = identification(clean.index, mapped, clean.people, self.ks)
        out = {"identities": len(ids), "pairs": ident.pairs}
        for k in self.ks:
            out[f"adaptive_top{k}_protection"] = ident.protection(k)
        out["per_identity_hits"] = {i: {str(k): ident.per_identity[i][k] for k in self.ks} for i in ids}
        out["per_identity_pairs"] = {i: len(probes[i]) * (len(probes[i]) - 1) for i in ids}
        return out
