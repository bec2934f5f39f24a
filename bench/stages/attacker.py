"""The adaptive attacker's own people: training identities it protects itself, with the very method,
source and budget under test, to learn how to undo the masks (:mod:`.adaptive`).

The attacker knows the method and holds a white-box copy of the target; it has no photo of any test
person. It takes the committed ``train`` split (VGGFace2 identities, disjoint from every LFW split),
picks per identity ``n_inference`` photos to craft that person's mask from (as for a test person) and
``n_protected`` other photos to protect, and gets the masks from the run's own mask bank
(:class:`.bank.MaskBank`: the method's own ``craft``, stored and reused like every mask set, under the
attacker split's name and content hash) and the protected photos from the run's own protector (budget,
uint8 rounding, the transform chain). A split that shares an identity or a photo with the people under
test or their gallery is refused.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ..data.splits import Row, Split
from ..errors import BenchError
from ..store import ResultStore
from .bank import MaskBank, MaskJob
from .evaluator import TargetEvaluator
from .faces import FaceBank
from .protector import Protector
from .transforms import TransformChain


def attacker_split(train: Split, n_inference: int = 10, n_protected: int = 10, seed: int = 0) -> Split:
    """Per training identity with enough photos, ``n_inference`` photos (role ``inference``: the mask is
    crafted from them) and ``n_protected`` others (role ``test``: protected, what the attacker trains
    on), drawn with a per-identity seeded RNG (one identity's draw never depends on the others)."""
    rows: list[Row] = []
    for ident in train.identities():
        files = sorted(train.files(ident, "train"))
        if len(files) < n_inference + n_protected:
            continue
        chosen = random.Random(f"attacker:{seed}:{ident}").sample(files, n_inference + n_protected)
        rows += [Row(train.dataset, ident, "inference", f) for f in sorted(chosen[:n_inference])]
        rows += [Row(train.dataset, ident, "test", f) for f in sorted(chosen[n_inference:])]
    if len({r.identity for r in rows}) < 2:
        raise BenchError(f"split {train.name!r} has fewer than 2 identities with {n_inference + n_protected} photos: "
                         "the adaptive attacker needs training people")
    return Split(f"{train.name}-attacker", rows)


def check_disjoint(attacker: Split, others: list[Split]) -> None:
    """The attacker trains on nobody under test: no shared identity (within a dataset) or photo."""
    mine = {(r.dataset, r.identity) for r in attacker.rows}, {(r.dataset, r.file) for r in attacker.rows}
    for other in others:
        ids = mine[0] & {(r.dataset, r.identity) for r in other.rows}
        files = mine[1] & {(r.dataset, r.file) for r in other.rows}
        if ids or files:
            shared = sorted(ids or files)[0]
            raise BenchError(f"the attacker's training split {attacker.name!r} shares {len(ids)} identities and {len(files)} "
                             f"photos with split {other.name!r} (first: {shared}); it must hold other people only")


class AttackerPeople:
    """The attacker's training people: their clean photos, and their photos protected like a cell's."""

    def __init__(self, split: Split, store: ResultStore, models, device: str = "cpu", provenance: dict | None = None,
                 progress: bool = True):
        self.split = split
        self.faces = FaceBank([split], progress=progress)
        self.bank = MaskBank(store, split, self.faces, models, device, provenance, progress)
        self.protector = Protector(split, self.faces)
        self.identities = split.identities()
        self._latest: tuple[tuple, dict[str, np.ndarray]] | None = None

    @property
    def dataset(self) -> str:
        return self.split.dataset

    def files(self) -> list[str]:
        """The protected photos' files, identity by identity (the order of :meth:`clean` and :meth:`protected`)."""
        return [f for i in self.identities for f in self.split.files(i, "test")]

    def counts(self) -> list[int]:
        return [len(self.split.files(i, "test")) for i in self.identities]

    def protected(self, job: MaskJob, budget: float, chain: TransformChain) -> dict[str, np.ndarray]:
        """The training people's photos protected as the cell's test photos are: the method's masks for
        them (crafted once by the mask bank), the same budget, rounding and transform chain."""
        key = (tuple(sorted(job.key(self.split).items())), float(budget), chain.spec)
        if self._latest is None or self._latest[0] != key:
            masks = self.bank.get(job)
            self._latest = (key, self.protector.protect(masks.masks, budget, chain).photos)
        return self._latest[1]


@dataclass
class AttackerCell:
    """What a learning protocol gets beside the features: the cell, and the means to rebuild the attacker."""

    job: MaskJob
    budget: float
    chain: TransformChain
    target: str
    model: object  # the target recognizer (a white-box copy: the attacker's to adapt)
    evaluator: TargetEvaluator  # the test side: distractors and test people (their faces, files)
    photos: dict[str, np.ndarray]  # the test people's protected photos (uint8, after the chain), as scored
    backend: str  # search backend of the run
