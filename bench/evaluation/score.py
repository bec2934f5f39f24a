"""The evaluated photos as result rows: the attacker's crops scored by every target with every protocol,
against the same clean gallery ``bench run`` builds, one row per cell, labelled with the tool's name.

A row's key has the fields of a method's cell (:data:`bench.store.CELL_KEY_FIELDS`): ``method`` is the
tool's name (``NAME@L2`` for the matched-budget version), ``method_config`` a digest of the protected files
(new files, new cells), ``source`` '-' and ``n_inference`` 0 (like a baseline: the tables take it at every
number of inference photos), ``budget`` the tables' budget the row is filed under (the tool's own L2 is
``l2_realised``; the matched version's, ``rescale_to``), ``kind`` ``external``. The probe-side rows of
a split's people therefore sit in Tables 1-2 beside the methods, and the other protocols and transforms
in the report's robustness and realistic sections.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..budget import realised_l2
from ..data.splits import Split
from ..features import embed_uint8
from ..metrics import linf_255, psnr, ssim
from ..search import make_index
from ..stages.bank import weights_of
from ..stages.evaluator import CleanGallery
from ..stages.realistic import Realistic
from .photos import Evaluated

KIND = "external"


def files_digest(pairs) -> str:
    """The evaluated set: each protected file's name and content (a re-made photo is a new set of cells)."""
    h = hashlib.sha256()
    for p in sorted(pairs, key=lambda p: p.name):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.protected.read_bytes()).digest())
    return h.hexdigest()[:16]


def people_hash(photos: list[Evaluated]) -> str:
    h = hashlib.sha1()
    for p in sorted(photos, key=lambda p: (p.person, p.original)):
        h.update(f"{p.person}\t{p.original}\n".encode())
    return h.hexdigest()[:16]


def by_person(photos: list[Evaluated]) -> dict[str, list[Evaluated]]:
    out: dict[str, list[Evaluated]] = {}
    for p in sorted(photos, key=lambda p: (p.person, p.original)):
        out.setdefault(p.person, []).append(p)
    return out


def quality(people: dict[str, list[Evaluated]], version: str, nominal: float | None) -> dict:
    """Crop-space quality (the saved photo cut at the clean geometry against the clean crop: the fields a
    method's row has) and the full photo's (:meth:`Realistic.summary`: SSIM/PSNR photo and face, L2 on the
    photo, re-detection counts)."""
    photos = [p for ps in people.values() for p in ps]
    clean = np.stack([p.clean_crop for p in photos])
    cut = np.stack([p.versions[version].cut for p in photos])
    l2 = realised_l2(clean, cut)
    finite = [v for v in psnr(clean, cut) if np.isfinite(v)]
    return {"l2_nominal": float(l2.mean()) if nominal is None else float(nominal),
            "l2_realised": float(l2.mean()), "l2_realised_min": float(l2.min()), "l2_realised_max": float(l2.max()),
            "linf": float(linf_255(clean, cut).mean()), "ssim": float(ssim(clean, cut).mean()),
            "psnr": float(np.mean(finite or [np.inf])),
            **Realistic.summary([p.versions[version].record for p in photos])}


class Scorer:
    """One target's side: the clean gallery of the evaluated people, and the embedding of the attacker's crops."""

    def __init__(self, target: str, model, gallery: Split, gallery_features: np.ndarray, people: dict[str, np.ndarray],
                 backend: str = "faiss", batch_size: int = 64):
        self.target, self.model, self.batch_size = target, model, batch_size
        self.clean = CleanGallery(target, make_index(backend, gallery_features), gallery_features, people,
                                  tuple(r.identity for r in gallery.rows))

    def embed(self, crops: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Features by person, embedded in one pass in person order (as the run's evaluator does)."""
        ids = sorted(crops)
        flat = embed_uint8(self.model, np.concatenate([crops[i] for i in ids]), self.batch_size)
        out, offset = {}, 0
        for i in ids:
            out[i] = flat[offset : offset + len(crops[i])]
            offset += len(crops[i])
        return out


def target_weights(target: str) -> str:
    return f"{weights_of('-')}->{weights_of(target)}"
