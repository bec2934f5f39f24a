"""Protocols: how a target's clean gallery and the protected photos' features become scores.

Three scorers on the same protected photos, each with its own metric names (so a row says which one
made it; the row's ``protocol`` field starts with the version):

- ``identification`` (``ident-v1``): probe-side, the paper's protocol: clean enrolment photo, protected
  probes. ``top{k}_protection``, ``top{k}_clean_accuracy``, ``tpr_at_far``.
- ``gallery-side`` (``gallery-side-v1``): the protected photos are the person's enrolment photos, clean photos
  are the probes (Fawkes, LowKey, FaceCure). ``gallery_top{k}_protection`` (nearest neighbour),
  ``gallery_linear_top{k}_protection`` (nearest class mean), with ``..._clean_accuracy`` baselines.
- ``linkability`` (``linkability-v1``): can the person's protected photos be linked to each other?
  ``link_top1_protection``, ``link_auc`` / ``link_auc_distractors`` (attack AUCs, 0.5 = chance).

Adaptive attackers (:mod:`.adaptive`) register here too: ``adaptive-ridge``, and ``adaptive-head`` /
``adaptive-finetune``, which train on the attacker's own protected people (``learns``).

Each protocol owns its definition and a version string that goes into every cell key (bump it when
the definition changes, so old cells stop matching). Registered with :func:`register_protocol`;
plugins through the ``bench.protocols`` entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ShapeError
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
    # True for a protocol that trains an attacker on its own people (bench.stages.adaptive): the runner
    # attach()es them before asking for keys, and passes score() the cell (bench.stages.attacker.AttackerCell)
    learns: ClassVar[bool] = False
    ks: tuple[int, ...] = (1, 5)
    far: float = 1e-3

    def key(self, gallery_name: str) -> str:
        """The cell key's protocol field: version, gallery and every setting that changes the scores."""
        return f"{self.version}/{gallery_name}/k{','.join(map(str, self.ks))}/far{self.far}"

    def per_identity(self, ident, probes: dict[str, np.ndarray]) -> dict:
        """A probe-side identification's per-identity counts, for intervals over people: identified
        pairs within top k (``per_identity_hits``) of the T x (T - 1) counted (``per_identity_pairs``)."""
        ids = sorted(probes)
        return {"per_identity_hits": {i: {str(k): ident.per_identity[i][k] for k in self.ks} for i in ids},
                "per_identity_pairs": {i: len(probes[i]) * (len(probes[i]) - 1) for i in ids}}

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
        out.update(self.per_identity(ident, probes))
        return out


def _f64(x: np.ndarray) -> np.ndarray:
    """Features as the search index scores them (float32 values, float64 arithmetic): ties agree."""
    return np.asarray(x, np.float32).astype(np.float64)


def _check_pairs(clean: CleanGallery, probes: dict[str, np.ndarray]) -> list[str]:
    ids = sorted(probes)
    for i in ids:
        if i not in clean.people or probes[i].shape != clean.people[i].shape or len(probes[i]) < 2:
            shape = clean.people[i].shape if i in clean.people else None
            raise ShapeError(f"identity {i}: protected {probes[i].shape} and clean {shape} features must match, T >= 2")
    return ids


def _kth_or_floor(top: np.ndarray, k: int) -> np.ndarray:
    """Column k-1 of descending top scores, or -inf where fewer than k competitors exist."""
    return top[:, k - 1] if top.shape[1] >= k else np.full(len(top), -np.inf)


@register_protocol
@dataclass
class GallerySide(Protocol):
    """Gallery-side identification: protected photos enrolled, clean photos as probes (Fawkes, LowKey, FaceCure).

    For each person, their T protected test photos are their enrolment photos in the gallery, beside the
    clean distractors; each of their T clean test photos in turn is a probe. A probe is never matched
    with its own protected copy (same photo index): it sees the person's other T - 1 protected photos.
    Each person is scored on their own (the gallery holds only that person's protected photos and the
    distractors), so one person's score never depends on who else is in the split, as on the probe side.

    - Nearest neighbour, Top-k: hit when the best of the person's T - 1 protected photos scores at least
      the k-th best distractor (ties go to the person, so protection is never overstated).
      ``gallery_top{k}_protection`` = 1 - hit rate over the sum of T probes.
    - Linear classifier, ``gallery_linear_top{k}_protection``: a nearest-class-mean classifier on cosine
      similarity over the gallery identities. Each distractor identity (``CleanGallery.distractor_ids``;
      each photo its own class when unknown) is one class, weight = its L2-normalised mean feature; the
      person's class weight is the normalised mean of their T - 1 other protected photos. Scores
      ``w_c . x`` are linear in the probe's feature: this is the cosine-softmax head (ArcFace/CosFace
      style) whose weights are class centres, i.e. the classifier a tracker trains on its gallery, with
      no training loop or extra dependency (Mensink et al., TPAMI 2013: NCM is competitive with trained
      linear heads on fixed embeddings). Hit when the person's class ranks within the top k (ties to the
      person). It tests whether the protected photos' *centre* still points at the person, which the
      nearest neighbour can miss.
    - Baselines ``..._clean_accuracy``: the same with the clean photos enrolled (no mask), what the
      target can do at all.
    """

    name: ClassVar[str] = "gallery-side"
    version: ClassVar[str] = "gallery-side-v1"

    def __post_init__(self):
        self._clean: dict[str, tuple] = {}  # target -> (per-identity top distractor / class scores, baseline)

    def key(self, gallery_name: str) -> str:
        return f"{self.version}/{gallery_name}/k{','.join(map(str, self.ks))}"

    def _competitors(self, clean: CleanGallery) -> tuple[dict, dict, int]:
        """Per identity, the clean probes' top-kmax distractor scores (T x kmax, descending) and their
        top-kmax distractor-class scores; the number of distractor classes. Mask-independent: cached."""
        kmax, ids = max(self.ks), sorted(clean.people)
        queries = np.concatenate([clean.people[i] for i in ids])
        top_nn, _ = clean.index.topk(queries, kmax)
        dist = _f64(clean.distractors)
        labels = np.asarray(clean.distractor_ids) if clean.distractor_ids is not None else np.arange(len(dist)).astype(str)
        if len(labels) != len(dist):
            raise ShapeError(f"{len(labels)} distractor identities for {len(dist)} distractor features")
        _, group = np.unique(labels, return_inverse=True)
        centres = np.zeros((group.max() + 1 if len(group) else 0, dist.shape[1]))
        np.add.at(centres, group, dist)
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
        class_scores = _f64(queries) @ centres.T
        top_ncm = -np.sort(-class_scores, axis=1)[:, :kmax]
        nn, ncm, offset = {}, {}, 0
        for i in ids:
            t = len(clean.people[i])
            nn[i], ncm[i] = top_nn[offset : offset + t], top_ncm[offset : offset + t]
            offset += t
        return nn, ncm, len(centres)

    def _hits(self, clean: CleanGallery, enrolled: dict[str, np.ndarray], nn: dict, ncm: dict):
        hits, linear = {}, {}
        for ident in sorted(enrolled):
            q, g = _f64(clean.people[ident]), _f64(enrolled[ident])
            sims = q @ g.T  # sims[j, i]: clean probe j against enrolled (protected) photo i
            np.fill_diagonal(sims, -np.inf)  # never its own protected copy
            best = sims.max(1)
            others = g.sum(0)[None, :] - g  # row j: sum of the T - 1 enrolled photos other than j
            others /= np.maximum(np.linalg.norm(others, axis=1, keepdims=True), 1e-12)
            own = (q * others).sum(1)
            hits[ident] = {k: int((best >= _kth_or_floor(nn[ident], k)).sum()) for k in self.ks}
            linear[ident] = {k: int((own >= _kth_or_floor(ncm[ident], k)).sum()) for k in self.ks}
        return hits, linear

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray]) -> dict:
        ids = _check_pairs(clean, probes)
        if clean.target not in self._clean:
            nn, ncm, classes = self._competitors(clean)
            self._clean[clean.target] = (nn, ncm, classes, self._hits(clean, clean.people, nn, ncm))
        nn, ncm, classes, (clean_hits, clean_linear) = self._clean[clean.target]
        hits, linear = self._hits(clean, probes, nn, ncm)
        n = sum(len(probes[i]) for i in ids)
        n_clean = sum(len(clean.people[i]) for i in clean_hits)
        out = {"identities": len(ids), "gallery_probes": n, "gallery_distractor_classes": classes}
        for k in self.ks:
            out[f"gallery_top{k}_protection"] = 1 - sum(hits[i][k] for i in ids) / n
            out[f"gallery_top{k}_clean_accuracy"] = sum(h[k] for h in clean_hits.values()) / n_clean
            out[f"gallery_linear_top{k}_protection"] = 1 - sum(linear[i][k] for i in ids) / n
            out[f"gallery_linear_top{k}_clean_accuracy"] = sum(h[k] for h in clean_linear.values()) / n_clean
        out["gallery_per_identity_hits"] = {i: {str(k): hits[i][k] for k in self.ks} for i in ids}
        out["gallery_per_identity_linear_hits"] = {i: {str(k): linear[i][k] for k in self.ks} for i in ids}
        out["gallery_per_identity_probes"] = {i: len(probes[i]) for i in ids}
        return out


LINK_CHUNK = 256  # protected photos per block of the photos x distractors similarity matrix


class _AUC:
    """AUC of genuine vs impostor scores (Mann-Whitney; a tie counts one half), impostors streamed in blocks."""

    def __init__(self, genuine: np.ndarray):
        self.genuine, self.below, self.n = np.asarray(genuine, np.float64), np.zeros(len(genuine)), 0

    def add(self, impostor: np.ndarray) -> None:
        imp = np.sort(np.asarray(impostor, np.float64).ravel())
        left, right = np.searchsorted(imp, self.genuine, "left"), np.searchsorted(imp, self.genuine, "right")
        self.below += left + 0.5 * (right - left)
        self.n += len(imp)

    @property
    def value(self) -> float:
        return float(self.below.sum() / (len(self.genuine) * self.n)) if len(self.genuine) and self.n else float("nan")


@register_protocol
@dataclass
class Linkability(Protocol):
    """Linkability: can an attacker link a person's protected photos to each other (and so cluster them)?

    All protected test photos of all people of the split, plus the clean distractors, form one pool.
    - ``link_top1_rate``: fraction of protected photos whose nearest neighbour in the pool (itself
      excluded) is another protected photo of the same person (ties go to the link, so protection is
      never overstated); ``link_top1_protection`` = 1 - that (higher = better, as everywhere).
    - ``link_auc``: AUC of same-person protected-protected similarities against protected photos of
      different people; ``link_auc_distractors``: against protected-vs-distractor similarities. These
      are the attacker's success (0.5 = chance, 1 = perfectly separable): lower = better protection.
    - ``..._clean``: the same on the clean test photos (what linking unprotected photos gives).
    A person's score here depends on the other people's protected photos (they are the candidates to
    be confused with), by design: an attacker holds everyone's published photos.
    """

    name: ClassVar[str] = "linkability"
    version: ClassVar[str] = "linkability-v1"

    def __post_init__(self):
        self._clean: dict[str, dict] = {}

    def key(self, gallery_name: str) -> str:
        return f"{self.version}/{gallery_name}"

    @staticmethod
    def _link(feats: dict[str, np.ndarray], distractors: np.ndarray) -> dict:
        ids = sorted(feats)
        p = _f64(np.concatenate([feats[i] for i in ids]))
        labels = np.repeat(np.arange(len(ids)), [len(feats[i]) for i in ids])
        sims = p @ p.T
        np.fill_diagonal(sims, -np.inf)
        same = labels[:, None] == labels[None, :]
        best_same = np.where(same, sims, -np.inf).max(1)
        best_other = np.where(same, -np.inf, sims).max(1)
        upper = np.triu_indices(len(p), 1)
        pair_sims, pair_same = sims[upper], same[upper]
        genuine = pair_sims[pair_same]
        people_auc = _AUC(genuine)
        if (~pair_same).any():
            people_auc.add(pair_sims[~pair_same])
        distractor_auc = _AUC(genuine)
        dist = _f64(distractors)
        for start in range(0, len(p), LINK_CHUNK):
            block = p[start : start + LINK_CHUNK] @ dist.T
            if block.size:
                best_other[start : start + LINK_CHUNK] = np.maximum(best_other[start : start + LINK_CHUNK], block.max(1))
                distractor_auc.add(block)
        linked = best_same >= best_other
        per = {i: int(linked[labels == n].sum()) for n, i in enumerate(ids)}
        return {"rate": float(linked.mean()), "auc": people_auc.value, "auc_distractors": distractor_auc.value,
                "per_identity": per, "pairs": int(pair_same.sum())}

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray]) -> dict:
        ids = _check_pairs(clean, probes)
        if clean.target not in self._clean:
            self._clean[clean.target] = self._link(clean.people, clean.distractors)
        base, got = self._clean[clean.target], self._link(probes, clean.distractors)
        return {
            "identities": len(ids), "link_photos": sum(len(probes[i]) for i in ids), "link_genuine_pairs": got["pairs"],
            "link_top1_rate": got["rate"], "link_top1_protection": 1 - got["rate"], "link_top1_clean_rate": base["rate"],
            "link_auc": got["auc"], "link_auc_clean": base["auc"],
            "link_auc_distractors": got["auc_distractors"], "link_auc_distractors_clean": base["auc_distractors"],
            "link_per_identity_linked": got["per_identity"],
            "link_per_identity_photos": {i: len(probes[i]) for i in ids},
        }


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
