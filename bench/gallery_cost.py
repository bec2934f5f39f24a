"""What a large gallery costs, and what approximate search loses (``python -m bench.gallery_cost``).

- ``recall``: recall@1/@5 of ``--index ivf|hnsw`` against exact (flat) search on REAL features: a
  feature file (e.g. a cached distractor gallery) is split into queries and gallery, seeded.
- ``scale``: build time, search time per query and peak memory (RSS) of each index kind against
  SYNTHETIC random unit vectors of 10k, 100k, 1M rows (real faces here stop at ~22k); each size runs
  in a fresh process, so its peak memory is its own. Synthetic vectors have no cluster structure,
  so they say nothing about recall: only about time and memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .search import INDEX_KINDS, make_index


def synthetic_unit_vectors(n: int, dim: int, seed: int = 0, block: int = 65_536) -> np.ndarray:
    """SYNTHETIC float32 unit vectors (standard normal, normalised): stand-ins for faces beyond the real ones."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for i in range(0, n, block):
        x = rng.standard_normal((min(block, n - i), dim), dtype=np.float32)
        out[i : i + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def recall(gallery: np.ndarray, queries: np.ndarray, kind: str, k: int = 5, backend: str = "faiss") -> dict:
    """Recall of ``kind`` against exact search: @1 = the same nearest item, @k = share of the exact top-k found."""
    t0 = time.perf_counter()
    exact_index = make_index(backend, gallery)
    t1 = time.perf_counter()
    _, exact = exact_index.topk(queries, k)
    t2 = time.perf_counter()
    approx_index = make_index(backend, gallery, kind)
    t3 = time.perf_counter()
    _, approx = approx_index.topk(queries, k)
    t4 = time.perf_counter()
    found = [len(set(a) & set(e)) / k for a, e in zip(approx, exact)]
    return {"index": kind, "spec": INDEX_KINDS[kind], "gallery": len(gallery), "queries": len(queries), "dim": gallery.shape[1],
            "recall@1": float(np.mean(approx[:, 0] == exact[:, 0])), f"recall@{k}": float(np.mean(found)),
            "flat_build_s": t1 - t0, "flat_search_ms_per_query": 1e3 * (t2 - t1) / len(queries),
            "build_s": t3 - t2, "search_ms_per_query": 1e3 * (t4 - t3) / len(queries)}


def split_queries(feats: np.ndarray, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(gallery, queries): ``n_queries`` rows drawn (seeded) from ``feats`` as queries, the rest the gallery."""
    order = np.random.default_rng(seed).permutation(len(feats))
    return np.ascontiguousarray(feats[order[n_queries:]]), np.ascontiguousarray(feats[order[:n_queries]])


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(size: int, dim: int, kind: str, n_queries: int, k: int = 5, backend: str = "faiss") -> dict:
    """One (size, kind) in THIS process: the gallery written to a .npy and memory-mapped, as a large
    cached gallery is, then the index built and searched."""
    with tempfile.TemporaryDirectory(prefix="gallery-cost-") as tmp:
        path = Path(tmp) / "gallery.npy"
        np.save(path, synthetic_unit_vectors(size, dim, seed=1))
        base = peak_rss_mib()
        gallery = np.load(path, mmap_mode="r")
        queries = synthetic_unit_vectors(n_queries, dim, seed=2)
        t0 = time.perf_counter()
        index = make_index(backend, gallery, kind)
        t1 = time.perf_counter()
        index.topk(queries, k)
        t2 = time.perf_counter()
        return {"synthetic": True, "index": kind, "backend": backend, "gallery": size, "dim": dim, "queries": n_queries,
                "build_s": t1 - t0, "search_ms_per_query": 1e3 * (t2 - t1) / n_queries,
                "peak_rss_mib": peak_rss_mib(), "rss_before_mib": base, "gallery_mib": size * dim * 4 / 2**20}


def measure_in_child(size: int, dim: int, kind: str, n_queries: int, backend: str = "faiss", timeout: float | None = None) -> dict:
    """:func:`measure` in a fresh interpreter: peak RSS is a process's high-water mark, so one per size."""
    cmd = [sys.executable, "-m", "bench.gallery_cost", "measure", "--size", str(size), "--dim", str(dim),
           "--index", kind, "--queries", str(n_queries), "--backend", backend]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gallery_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recall", help="recall of ivf/hnsw against flat on real feature files (.npy, N x D)")
    r.add_argument("features", nargs="+")
    r.add_argument("--queries", type=int, default=1000)
    r.add_argument("--index", default="ivf,hnsw")
    s = sub.add_parser("scale", help="time and peak memory against synthetic galleries, one process per size")
    s.add_argument("--sizes", default="10000,100000,1000000")
    s.add_argument("--index", default="flat,ivf,hnsw")
    for q in (s, sub.add_parser("measure", help="one size in this process (what scale runs)")):
        q.add_argument("--dim", type=int, default=512)
        q.add_argument("--queries", type=int, default=1000)
        q.add_argument("--backend", default="faiss")
        if q is not s:
            q.add_argument("--size", type=int, required=True)
            q.add_argument("--index", default="flat", choices=list(INDEX_KINDS))
    a = p.parse_args(argv)
    if a.cmd == "measure":
        print(json.dumps(measure(a.size, a.dim, a.index, a.queries, backend=a.backend)))
    elif a.cmd == "scale":
        for size in map(int, a.sizes.split(",")):
            for kind in a.index.split(","):
                print(json.dumps(measure_in_child(size, a.dim, kind, a.queries, a.backend)), flush=True)
    else:
        for f in a.features:
            gallery, queries = split_queries(np.load(f), a.queries)
            for kind in a.index.split(","):
                print(json.dumps({"features": Path(f).name, **recall(gallery, queries, kind)}), flush=True)


if __name__ == "__main__":
    main()
