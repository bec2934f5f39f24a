"""Aligned faces keyed by (dataset, file): a split's people and its gallery may come from different datasets."""

from __future__ import annotations

import numpy as np

from ..data.splits import Split
from ..features import FaceSource


class FaceBank:
    """One :class:`FaceSource` per dataset, each aligning (once) every file the given splits name."""

    def __init__(self, splits: list[Split], progress: bool = True):
        wanted: dict[str, set[str]] = {}
        for split in splits:
            for row in split.rows:
                wanted.setdefault(row.dataset, set()).add(row.file)
        self._wanted = {d: sorted(files) for d, files in wanted.items()}
        self._sources: dict[str, FaceSource] = {}
        self.progress = progress

    def source(self, dataset: str) -> FaceSource:
        if dataset not in self._sources:
            self._sources[dataset] = FaceSource(dataset, self._wanted.get(dataset, []), progress=self.progress)
        return self._sources[dataset]

    def faces(self, dataset: str, files: list[str]) -> np.ndarray:
        """uint8 ``N x 112 x 112 x 3`` crops of ``files`` (relpaths inside ``dataset``)."""
        return self.source(dataset).faces(files)
