"""Nearest-neighbour search over a gallery of unit vectors (inner product = cosine similarity).

Two backends, FAISS (faiss-cpu, or faiss-gpu when installed with a GPU) and exact torch. Both pick
candidates in float32, then re-score the candidates in float64 with the same code, so both return
identical top-k lists: float32 summation order can only reorder near-ties, and those stay inside the
candidate margin.

Index kinds (``--index``): ``flat`` (the default) is exhaustive and exact. ``ivf`` (FAISS IndexIVFFlat)
and ``hnsw`` (FAISS IndexHNSWFlat) are approximate: they look at part of the gallery, so a true
neighbour can be missed (their recall against flat is measured by ``python -m bench.gallery_cost``);
what they do return is re-scored exactly, like flat's candidates.

Memory stays bounded for large (memory-mapped) galleries: no float64 copy of the gallery is kept, the
candidates' rows are gathered per block of queries, and an exhaustive float64 pass runs over blocks
of gallery rows.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import BenchError, ShapeError
from .registry import Registry

CANDIDATE_MARGIN = 4  # extra float32 candidates re-scored in float64 (float32 error ~1e-6 only swaps near-ties)
CHUNK = 1024  # queries per block: keeps the gathered candidate vectors small
ROW_BLOCK = 65_536  # gallery rows per block of an exhaustive float64 pass (65k x 512 x 8 B = 256 MiB)
SIM_BLOCK_BYTES = 256 * 2**20  # the torch backend's float32 query x gallery similarity block, at most
SEARCH_BACKENDS: Registry["SearchIndex"] = Registry("search backend")

# Approximate kinds and the parameters that decide their results: they name the kind in a cell key, so
# changing a parameter gives new cells instead of mixing with the old ones.
IVF_NPROBE = 32  # lists visited per query (of ~4 sqrt(M)); recall on real features: bench.gallery_cost
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
INDEX_KINDS = {
    "flat": "flat",
    "ivf": f"ivf(nlist=4sqrtM,nprobe={IVF_NPROBE})",
    "hnsw": f"hnsw(M={HNSW_M},efc={HNSW_EF_CONSTRUCTION},efs={HNSW_EF_SEARCH})",
}


def check_index_kind(kind: str) -> str:
    if kind not in INDEX_KINDS:
        raise BenchError(f"unknown index {kind!r}; choose one of: {', '.join(INDEX_KINDS)}")
    return kind


class SearchIndex:
    """Inner-product search. Subclasses implement ``_candidates(queries, n) -> indices`` (-1: none)."""

    exact = True  # candidates are the float32 top-n of the whole gallery

    def __init__(self, gallery: np.ndarray):
        if not (isinstance(gallery, np.ndarray) and gallery.dtype == np.float32 and gallery.flags.c_contiguous):
            gallery = np.ascontiguousarray(gallery, dtype=np.float32)  # a memory-mapped float32 gallery stays mapped
        if gallery.ndim != 2:
            raise ShapeError(f"gallery must be M x D, got {gallery.shape}")
        self.gallery = gallery
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
            cand = torch.from_numpy(self._candidates(queries[i : i + CHUNK], n)).long()
            missing = (cand < 0).any(dim=1)  # an approximate index found fewer than n items
            rows = self.gallery[cand.clamp(min=0).numpy().ravel()].astype(np.float64).reshape(*cand.shape, -1)
            exact = torch.einsum("ncd,nd->nc", torch.from_numpy(rows), q)
            redo = missing
            if self.exact:
                # a gallery item outside the candidates scores at most (lowest candidate) + float32 error;
                # where that could still reach the k-th best, search that query exhaustively instead
                kth = exact.topk(k, dim=1).values[:, -1]
                redo = redo | (exact.min(dim=1).values + 2 * self._float32_error >= kth)
            unsafe = torch.nonzero(redo).ravel()
            if len(unsafe) and (n < self.size or not self.exact):
                sc, ix = self._exhaustive(q[unsafe], n)
                exact[unsafe], cand[unsafe] = torch.from_numpy(sc), torch.from_numpy(ix)
            sc, ix = _rank(exact.numpy(), cand.numpy(), k)
            scores.append(sc)
            indices.append(ix)
        if not scores:
            return np.empty((0, k)), np.empty((0, k), np.int64)
        return np.concatenate(scores), np.concatenate(indices)

    def _exhaustive(self, q64: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact float64 top-n over the whole gallery, one block of rows at a time (bounded memory)."""
        best_s = np.full((len(q64), 0), -np.inf)
        best_i = np.zeros((len(q64), 0), np.int64)
        for start in range(0, self.size, ROW_BLOCK):
            block = torch.from_numpy(self.gallery[start : start + ROW_BLOCK].astype(np.float64))
            sims = (q64 @ block.T).numpy()
            idx = np.broadcast_to(np.arange(start, start + len(block)), sims.shape)
            best_s, best_i = _rank(np.concatenate([best_s, sims], 1), np.concatenate([best_i, idx], 1), n)
        return best_s, best_i


def _rank(scores: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k per row by descending score, then ascending index: ties resolve the same everywhere."""
    order = np.lexsort((index, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(index, order, 1)


@SEARCH_BACKENDS.register("torch")
class TorchIndex(SearchIndex):
    def __init__(self, gallery: np.ndarray, device: str | None = None, chunk: int = CHUNK, index: str = "flat"):
        if check_index_kind(index) != "flat":
            raise BenchError(f"--index {index} is a FAISS index; use --backend faiss (torch searches exhaustively: flat)")
        super().__init__(gallery)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._g = torch.from_numpy(self.gallery).to(self.device)
        # queries per similarity block: at most SIM_BLOCK_BYTES of float32 N x M at once
        self.chunk = max(1, min(chunk, SIM_BLOCK_BYTES // (4 * max(1, self.size))))

    def _candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        out = []
        q = torch.from_numpy(queries).to(self.device)
        for i in range(0, len(q), self.chunk):
            sims = q[i : i + self.chunk] @ self._g.T
            out.append(torch.topk(sims, n, dim=1).indices.cpu())
        return torch.cat(out).numpy()


@SEARCH_BACKENDS.register("faiss")
class FaissIndex(SearchIndex):
    def __init__(self, gallery: np.ndarray, use_gpu: bool | None = None, index: str = "flat"):
        import faiss

        super().__init__(gallery)
        self.kind = check_index_kind(index)
        self.exact = self.kind == "flat"
        d, m = self.gallery.shape[1], self.size
        if self.kind == "ivf":
            nlist = max(1, min(int(4 * np.sqrt(m)), m // 39))  # FAISS wants >= 39 training points per list
            built = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            built.cp.seed = 1234  # k-means: the same lists on every run
            # k-means on an evenly spaced sample of at most 256 points per list (FAISS's own cap)
            built.train(np.ascontiguousarray(self.gallery[:: max(1, m // (256 * nlist))]))
            built.nprobe = min(IVF_NPROBE, nlist)
        elif self.kind == "hnsw":
            built = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            built.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            built.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            built = faiss.IndexFlatIP(d)
            gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
            if (use_gpu is None and gpus > 0) or use_gpu:
                built = faiss.index_cpu_to_all_gpus(built)  # faiss-gpu build only
        for start in range(0, m, ROW_BLOCK):  # adds in blocks: a mapped gallery is read once, a block at a time
            built.add(np.ascontiguousarray(self.gallery[start : start + ROW_BLOCK]))
        self.index = built

    def _candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(HNSW_EF_SEARCH, n)
        _, idx = self.index.search(queries, n)
        return idx.astype(np.int64)


def make_index(backend: str, gallery: np.ndarray, index: str = "flat") -> SearchIndex:
    check_index_kind(index)
    # flat is every backend's search; only an approximate kind is passed on (a plugin backend may not know it)
    return SEARCH_BACKENDS.create(backend, gallery=gallery, **({} if index == "flat" else {"index": index}))
