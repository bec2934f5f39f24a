"""Search time and peak memory against gallery size: 10k, 100k, 1M SYNTHETIC 512-D unit vectors (real
faces stop at ~22k here), per index kind; 1,000 queries, top-5.

    .venv/bin/pytest tests/benchmarks/test_bench_gallery.py --benchmark-enable

Only with --benchmark-enable (the 1M sizes take minutes and ~5 GB). Time: pytest-benchmark, in this
process. Peak memory: the same build + search in a fresh process (a process's RSS high-water mark
only grows), recorded in the benchmark's extra_info and bounded: the gallery is memory-mapped and the
search never holds a float64 copy of it or a queries x gallery block beyond bench.search's limits.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.gallery_cost import measure_in_child, synthetic_unit_vectors
from bench.search import make_index

DIM, QUERIES, K = 512, 1000, 5
SIZES = [10_000, 100_000, 1_000_000]
SLOW_BUILDS = {("ivf", 1_000_000), ("hnsw", 1_000_000)}  # ~18 min and ~1 h to build on 2 cores (README: 1M cost)


@pytest.fixture(scope="module")
def queries():
    return synthetic_unit_vectors(QUERIES, DIM, seed=2)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("size", SIZES)
def test_search_time_and_peak_memory_vs_gallery_size(benchmark, size, kind, queries, tmp_path):
    if benchmark.disabled:
        pytest.skip("a benchmark: run with --benchmark-enable")
    if (kind, size) in SLOW_BUILDS:
        pytest.skip(f"{kind} at {size}: build too slow for this CPU (estimated in the README)")
    path = tmp_path / "synthetic-gallery.npy"
    np.save(path, synthetic_unit_vectors(size, DIM, seed=1))
    index = make_index("faiss", np.load(path, mmap_mode="r"), kind)
    benchmark.group = f"search {QUERIES} queries, top-{K}, synthetic {DIM}-D"
    benchmark.extra_info.update(synthetic=True, gallery=size)
    _, idx = benchmark.pedantic(index.topk, args=(queries, K), rounds=1, iterations=1)
    assert idx.shape == (QUERIES, K) and idx.min() >= 0
    mem = measure_in_child(size, DIM, kind, QUERIES)
    benchmark.extra_info.update(peak_rss_mib=mem["peak_rss_mib"], build_s=mem["build_s"])
    print(f"{kind} {size}: build {mem['build_s']:.1f} s, {mem['search_ms_per_query']:.3f} ms/query, "
          f"peak {mem['peak_rss_mib']:.0f} MiB (gallery {mem['gallery_mib']:.0f} MiB)")
    # bounded: the index's own copy + the mapped file's pages + a fixed working set (blocks, libraries)
    assert mem["peak_rss_mib"] <= 2.5 * mem["gallery_mib"] + 1024
