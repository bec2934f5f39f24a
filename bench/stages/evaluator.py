"""A target's side of a run: its clean gallery (distractors + the people's clean test photos, features
cached on disk) and the embedding of protected photos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.splits import Split
from ..features import Layer, clean_features, embed_uint8
from ..search import SearchIndex, make_index
from .faces import FaceBank


@dataclass
class CleanGallery:
    """What every protocol scores against. ``people[id]`` row i is the clean features of test photo i."""

    target: str
    index: SearchIndex  # the distractors
    distractors: np.ndarray  # M x D
    people: dict[str, np.ndarray]  # identity -> T x D
    distractor_ids: tuple[str, ...] | None = None  # identity of each distractor row (None: unknown)

    def people_matrix(self) -> np.ndarray:
        return np.concatenate([self.people[i] for i in sorted(self.people)])


def split_features(model, faces: FaceBank, split: Split, batch_size: int = 64, progress: bool = True,
                   layer: Layer | None = None) -> np.ndarray:
    """Clean features of every row of ``split``, in row order. A gallery may combine datasets (LFW +
    VGGFace2 + Glint): each run of consecutive rows from one dataset is embedded and cached on its own,
    so a one-dataset split keeps its cache file (and a large one stays memory-mapped)."""
    runs: list[tuple[str, list[str]]] = []
    for row in split.rows:
        if not runs or runs[-1][0] != row.dataset:
            runs.append((row.dataset, []))
        runs[-1][1].append(row.file)
    parts = [clean_features(model, faces.source(d), files, batch_size, progress, layer=layer) for d, files in runs]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty((0, layer.dim if layer else model.embedding_dim), np.float32)


class TargetEvaluator:
    def __init__(self, target: str, model, people: Split, gallery: Split, faces: FaceBank,
                 backend: str = "faiss", batch_size: int = 64, progress: bool = True, index: str = "flat"):
        self.target, self.model, self.people, self.gallery_split = target, model, people, gallery
        self.faces, self.backend, self.batch_size, self.progress = faces, backend, batch_size, progress
        self.index = index  # flat | ivf | hnsw (bench.search.INDEX_KINDS)
        self.identities = people.identities()
        self._clean: CleanGallery | None = None

    @property
    def clean(self) -> CleanGallery:
        if self._clean is None:
            gallery = self.gallery_split
            distractors = split_features(self.model, self.faces, gallery, self.batch_size, self.progress)
            flat = [f for i in self.identities for f in self.people.files(i, "test")]
            test = clean_features(self.model, self.faces.source(self.people.dataset), flat, self.batch_size, self.progress)
            self._clean = CleanGallery(self.target, make_index(self.backend, distractors, self.index), distractors,
                                       self._by_identity(test, {i: len(self.people.files(i, "test")) for i in self.identities}),
                                       tuple(r.identity for r in gallery.rows))  # all_files() order
        return self._clean

    def _by_identity(self, flat: np.ndarray, counts: dict[str, int]) -> dict[str, np.ndarray]:
        out, offset = {}, 0
        for i in self.identities:
            out[i] = flat[offset : offset + counts[i]]
            offset += counts[i]
        return out

    def embed(self, photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Features of protected photos, by identity (row i: test photo i)."""
        flat = np.concatenate([photos[i] for i in self.identities])
        return self._by_identity(embed_uint8(self.model, flat, self.batch_size), {i: len(photos[i]) for i in self.identities})
