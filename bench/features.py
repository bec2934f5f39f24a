"""Faces of a protocol split, and recognizer features of clean faces cached per (target, file list)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .data import open_dataset, prepare
from .data.align import ALIGNER_VERSION
from .data.splits import Split
from .paths import cache_dir
from .zoo.base import ModelCard, Recognizer


def model_fingerprint(card: ModelCard) -> str:
    """Identifies a model's weights and preprocessing: cached features and results follow them."""
    files = ",".join(f.sha256[:12] for f in card.files) or "no-files"
    prep = card.extra.get("fingerprint") or card.extra.get("preprocessing") or ""
    return f"{files}/{hashlib.sha1(str(prep).encode()).hexdigest()[:8]}"


class FaceSource:
    """Aligned crops of the images a run needs, loaded (and aligned if needed) once."""

    def __init__(self, dataset: str, files: list[str], progress: bool = True):
        self.prepared = prepare(open_dataset(dataset), only=sorted(set(files)), progress=progress)
        self.dataset = dataset
        self._cache: dict[str, np.ndarray] = {}

    def faces(self, files: list[str]) -> np.ndarray:
        missing = [f for f in files if f not in self._cache]
        if missing:
            for f, crop in zip(missing, self.prepared.faces(missing)):
                self._cache[f] = crop
        return np.stack([self._cache[f] for f in files]) if files else np.empty((0, 112, 112, 3), np.uint8)


def feature_cache_path(model: Recognizer, dataset: str, files: list[str]) -> Path:
    h = hashlib.sha1("\n".join([model.name, model_fingerprint(model.card), ALIGNER_VERSION, dataset, *files]).encode())
    return cache_dir() / "features" / model.name / f"{h.hexdigest()[:20]}.npy"


def clean_features(model: Recognizer, source: FaceSource, files: list[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Features of clean faces, computed once per (model, weights, aligner, files) and cached on disk."""
    path = feature_cache_path(model, source.dataset, files)
    if path.exists():
        return np.load(path)
    feats = embed_uint8(model, source.faces(files), batch_size, progress).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npy")
    np.save(tmp, feats)
    tmp.replace(path)
    return feats


def embed_uint8(model: Recognizer, faces: np.ndarray, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    import torch

    return model.embed_all(torch.from_numpy(np.ascontiguousarray(faces)), batch_size=batch_size, progress=progress).numpy()


def split_files(split: Split, role: str) -> dict[str, list[str]]:
    return {ident: split.files(ident, role) for ident in split.identities()}
