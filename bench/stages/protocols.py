"""Protocols: how a target's clean gallery and the protected photos' features become scores.

Each protocol owns its definition and a version string that goes into every cell key (bump it when
the definition changes, so old cells stop matching). Registered with :func:`register_protocol`;
plugins through the ``bench.protocols`` entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..protocol import identification, threshold_at_far, tpr_at_threshold
from ..registry import Registry
from .evaluator import CleanGallery

PROTOCOLS: Registry[type["Protocol"]] = Registry("protocol", "bench.protocols")


def register_protocol(cls: type["Protocol"]) -> type["Protocol"]:
    PROTOCOLS.add(cls.name, cls, version=cls.version, description=(cls.__doc__ or "").strip().split("\n")[0])
    return cls


@dataclass
class Protocol:
    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    ks: tuple[int, ...] = (1, 5)
    far: float = 1e-3

    def key(self, gallery_name: str) -> str:
        """The cell key's protocol field: version, gallery and every setting that changes the scores."""
        return f"{self.version}/{gallery_name}/k{','.join(map(str, self.ks))}/far{self.far}"

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray]) -> dict:
        raise NotImplementedError


@register_protocol
@dataclass
class ProbeIdentification(Protocol):
    """Probe-side 1:N identification (paper section 4.1.2) plus 1:1 verification TPR at a fixed FAR."""

    name: ClassVar[str] = "identification"
    version: ClassVar[str] = "ident-v1"

    def __post_init__(self):
        self._baseline: dict[str, tuple] = {}  # target -> (clean identification, verification threshold)

    def baseline(self, clean: CleanGallery):
        if clean.target not in self._baseline:
            ident = identification(clean.index, clean.people, clean.people, self.ks)
            # verification threshold at the FAR: clean test photos against other people's photos
            threshold = threshold_at_far((clean.people_matrix() @ clean.distractors.T).ravel(), self.far)
            self._baseline[clean.target] = (ident, threshold)
        return self._baseline[clean.target]

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray]) -> dict:
        clean_ident, threshold = self.baseline(clean)
        ident = identification(clean.index, probes, clean.people, self.ks)
        ids = sorted(probes)
        out = {"identities": len(ids), "pairs": ident.pairs, "far": self.far}
        for k in self.ks:
            out[f"top{k}_protection"] = ident.protection(k)
            out[f"top{k}_clean_accuracy"] = clean_ident.accuracy(k)
        out["tpr_at_far"] = tpr_at_threshold(ident.genuine, threshold)
        out["tpr_at_far_clean"] = tpr_at_threshold(clean_ident.genuine, threshold)
        # per identity: identified pairs within top k (of T x (T - 1)), for intervals over people
        out["per_identity_hits"] = {i: {str(k): ident.per_identity[i][k] for k in self.ks} for i in ids}
        out["per_identity_pairs"] = {i: len(probes[i]) * (len(probes[i]) - 1) for i in ids}
        return out


def create_protocol(name: str, ks: tuple[int, ...] = (1, 5), far: float = 1e-3) -> Protocol:
    return PROTOCOLS.entry(name).factory(ks=tuple(ks), far=far)


def clean_identification(name: str, model, split: str = "celebrities", gallery: str = "distractors",
                         backend: str = "faiss", progress: bool = True):
    """The 1:N identification accuracy of a target on clean photos (what `bench zoo verify` reports)."""
    from ..data.splits import load_split
    from .evaluator import TargetEvaluator
    from .faces import FaceBank

    people, distractors = load_split(split), load_split(gallery)
    evaluator = TargetEvaluator(name, model, people, distractors, FaceBank([people, distractors], progress), backend,
                                progress=progress)
    return ProbeIdentification().baseline(evaluator.clean)[0]
