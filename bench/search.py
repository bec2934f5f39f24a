"""Nearest-neighbour search over a gallery of unit vectors (inner product = cosine similarity).

Two backends, FAISS (faiss-cpu, or faiss-gpu when installed with a GPU) and exact torch. Both pick
candidates in float32, then re-score the candidates in float64 with the same code, so both return
identical top-k lists: float32 summation order can only reorder near-ties, and those stay inside the
candidate margin.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ShapeError
from .registry import Registry

CANDIDATE_MARGIN = 4  # extra float32 candidates re-scored in float64 (float32 error ~1e-6 only swaps near-ties)
CHUNK = 1024  # queries per block: keeps the gathered candidate vectors small
SEARCH_BACKENDS: Registry["SearchIndex"] = Registry("search backend")


class SearchIndex:
    """Exact inner-product search. Subclasses implement ``_candidates(queries, n) -> indices``."""

    def __init__(self, gallery: np.ndarray):
        gallery = np.ascontiguousarray(gallery, dtype=np.float32)
        if gallery.ndim != 2:
            raise ShapeError(f"gallery must be M x D, got {gallery.shape}")
        self.gallery = gallery
        self._gallery64 = torch.from_numpy(gallery.astype(np.float64))
        # worst-case |float32 - exact| of an inner product of unit vectors (D roundings of 2^-24 each, x2)
        self._float32_error = gallery.shape[1] * 2.0**-23

    @property
    def size(self) -> int:
        return len(self.gallery)

    def _candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        raise NotImplementedError

    def topk(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar gallery items per query: (scores float64 N x k, indices N x k), best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.gallery.shape[1]:
            raise ShapeError(f"queries must be N x {self.gallery.shape[1]}, got {queries.shape}")
        k = min(k, self.size)
        n = min(k + CANDIDATE_MARGIN, self.size)
        scores, indices = [], []
        for i in range(0, len(queries), CHUNK):
            q = torch.from_numpy(queries[i : i + CHUNK]).double()
            cand = torch.from_numpy(self._candidates(queries[i : i + CHUNK], n))
            exact = torch.einsum("ncd,nd->nc", self._gallery64[cand], q)
            # a gallery item outside the candidates scores at most (lowest candidate) + float32 error;
            # where that could still reach the k-th best, search that query exhaustively instead
            kth = exact.topk(k, dim=1).values[:, -1]
            unsafe = torch.nonzero(exact.min(dim=1).values + 2 * self._float32_error >= kth).ravel()
            if n < self.size and len(unsafe):
                cand = cand.clone().long()
                full = q[unsafe] @ self._gallery64.T
                cand_full = torch.arange(self.size).expand(len(unsafe), -1)
                sc, ix = _rank(full.numpy(), cand_full.numpy(), n)
                exact[unsafe], cand[unsafe] = torch.from_numpy(sc), torch.from_numpy(ix)
            sc, ix = _rank(exact.numpy(), cand.numpy(), k)
            scores.append(sc)
            indices.append(ix)
        if not scores:
            return np.empty((0, k)), np.empty((0, k), np.int64)
        return np.concatenate(scores), np.concatenate(indices)


def _rank(scores: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k per row by descending score, then ascending index: ties resolve the same everywhere."""
    order = np.lexsort((index, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(index, order, 1)


@SEARCH_BACKENDS.register("torch")
class TorchIndex(SearchIndex):
    def __init__(self, gallery: np.ndarray, device: str | None = None, chunk: int = CHUNK):
        super().__init__(gallery)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._g = torch.from_numpy(self.gallery).to(self.device)
        self.chunk = chunk  # bounds the N x M similarity block held at once

    def _candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        out = []
        q = torch.from_numpy(queries).to(self.device)
        for i in range(0, len(q), self.chunk):
            sims = q[i : i + self.chunk] @ self._g.T
            out.append(torch.topk(sims, n, dim=1).indices.cpu())
        return torch.cat(out).numpy()


@SEARCH_BACKENDS.register("faiss")
class FaissIndex(SearchIndex):
    def __init__(self, gallery: np.ndarray, use_gpu: bool | None = None):
        import faiss

        super().__init__(gallery)
        index = faiss.IndexFlatIP(self.gallery.shape[1])
        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if (use_gpu is None and gpus > 0) or use_gpu:
            index = faiss.index_cpu_to_all_gpus(index)  # faiss-gpu build only
        index.add(self.gallery)
        self.index = index

    def _candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        _, idx = self.index.search(queries, n)
        return idx.astype(np.int64)


def make_index(backend: str, gallery: np.ndarray) -> SearchIndex:
    return SEARCH_BACKENDS.create(backend, gallery=gallery)
