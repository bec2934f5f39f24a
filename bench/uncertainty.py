"""Intervals over people: a protection rate measured on 62 identities is uncertain, and so is a gap.

Cells store, per identity, the probe/gallery pairs identified within the top k (``per_identity_hits``)
and the pairs counted (``per_identity_pairs``). Resampling identities with replacement (the unit
that was sampled: a person's photos are not independent) gives a percentile bootstrap interval for a
rate, and, with the same resampled people for both methods, a paired interval for the difference
between two methods on the same targets. A difference whose interval covers 0 is "not resolved".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BenchError


def _protection(cells: list[dict], k: int, people: list[str]) -> np.ndarray:
    """``len(cells) x len(people)`` per-person protection (fraction) for each cell (target)."""
    out = np.empty((len(cells), len(people)))
    for c, cell in enumerate(cells):
        hits, pairs = cell.get("per_identity_hits"), cell.get("per_identity_pairs")
        if not hits or not pairs:
            raise BenchError(f"cell {cell.get('cell', '?')} has no per-identity counts (made by an older version): re-run it")
        out[c] = [1 - hits[p][str(k)] / pairs[p] for p in people]
    return out


@dataclass(frozen=True)
class Interval:
    estimate: float  # percentage points
    low: float
    high: float

    @property
    def resolved(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.estimate:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def _people(cells: list[dict]) -> list[str]:
    sets = [set(c["per_identity_pairs"]) for c in cells if c.get("per_identity_pairs")]
    if not sets or any(s != sets[0] for s in sets):
        raise BenchError("the cells compared do not cover the same people")
    return sorted(sets[0])


def bootstrap_rate(cells: list[dict], k: int = 1, n: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """Mean Top-k protection (%) over the given cells (e.g. a method's black-box targets), with its interval."""
    people = _people(cells)
    per = _protection(cells, k, people).mean(0)  # per person, averaged over targets
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(people), (n, len(people)))
    boots = per[idx].mean(1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Interval(100 * per.mean(), 100 * lo, 100 * hi)


def paired_difference(cells_a: list[dict], cells_b: list[dict], k: int = 1, n: int = 2000, seed: int = 0,
                      level: float = 0.95) -> Interval:
    """Mean Top-k protection of A minus B (%), targets matched in order, people resampled together."""
    if [c["target"] for c in cells_a] != [c["target"] for c in cells_b]:
        raise BenchError("paired comparison needs the same targets in the same order for both methods")
    people = _people(cells_a + cells_b)
    diff = _protection(cells_a, k, people).mean(0) - _protection(cells_b, k, people).mean(0)
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(people), (n, len(people)))].mean(1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Interval(100 * diff.mean(), 100 * lo, 100 * hi)
