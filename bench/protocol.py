"""The paper's 1:N identification protocol (section 4.1.2) and 1:1 verification at a fixed FAR.

For each identity, each clean test photo in turn is that identity's only gallery photo among the
distractors; the identity's *other* test photos, protected, are the probes. A probe is identified
at rank k when the clean gallery photo is among its k most similar gallery items. Ties go to the
true match, so protection is never overstated. Pairs counted: identities x T x (T - 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ShapeError
from .search import SearchIndex


@dataclass
class Identification:
    ks: tuple[int, ...]
    pairs: int
    hits: dict[int, int]  # pairs identified within the top k
    per_identity: dict[str, dict[int, int]] = field(default_factory=dict)
    genuine: np.ndarray = field(default_factory=lambda: np.empty(0))  # probe-vs-clean-gallery similarities

    def accuracy(self, k: int) -> float:
        return self.hits[k] / self.pairs if self.pairs else float("nan")

    def protection(self, k: int) -> float:
        """Protection success rate = 1 - Top-k identification rate (fraction, not %)."""
        return 1.0 - self.accuracy(k)


def identification(
    index: SearchIndex,
    probes: dict[str, np.ndarray],
    gallery: dict[str, np.ndarray],
    ks: tuple[int, ...] = (1, 5),
) -> Identification:
    """``probes[id]``: T x D protected test features; ``gallery[id]``: T x D clean test features
    (row i of both is the same photo). ``index`` holds the distractor gallery."""
    ids = sorted(probes)
    for i in ids:
        if probes[i].shape != gallery[i].shape or len(probes[i]) < 2:
            raise ShapeError(f"identity {i}: probes {probes[i].shape} and gallery {gallery[i].shape} must match, T >= 2")
    kmax = max(ks)
    top_scores, _ = index.topk(np.concatenate([probes[i] for i in ids]), kmax)
    hits = {k: 0 for k in ks}
    per_identity: dict[str, dict[int, int]] = {}
    genuine = []
    offset = 0
    for ident in ids:
        p, g = probes[ident].astype(np.float64), gallery[ident].astype(np.float64)
        t = len(p)
        sims = p @ g.T  # sims[i, j]: protected photo i against clean gallery photo j
        off_diag = ~np.eye(t, dtype=bool)
        kth = top_scores[offset : offset + t]
        offset += t
        per_identity[ident] = {}
        for k in ks:
            # identified within top-k when fewer than k distractors score above the true match
            threshold = kth[:, k - 1 : k] if index.size >= k else np.full((t, 1), -np.inf)
            n = int(((sims >= threshold) & off_diag).sum())
            per_identity[ident][k] = n
            hits[k] += n
        genuine.append(sims[off_diag])
    pairs = sum(len(probes[i]) * (len(probes[i]) - 1) for i in ids)
    return Identification(tuple(ks), pairs, hits, per_identity, np.concatenate(genuine) if genuine else np.empty(0))


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The smallest threshold t such that at most ``far`` of impostor scores are > t."""
    scores = np.sort(np.asarray(impostor, np.float64))[::-1]
    allowed = int(np.floor(far * len(scores)))
    if allowed >= len(scores):
        return float("-inf")
    return float(scores[allowed])


def tpr_at_threshold(genuine: np.ndarray, threshold: float) -> float:
    """Fraction of genuine scores accepted (> threshold)."""
    return float((np.asarray(genuine) > threshold).mean()) if len(genuine) else float("nan")


def tpr_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float = 1e-3) -> float:
    """Verification true-accept rate of ``genuine`` scores at the threshold giving FAR on ``impostor``."""
    return tpr_at_threshold(genuine, threshold_at_far(impostor, far))
