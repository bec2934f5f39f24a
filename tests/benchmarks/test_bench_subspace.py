"""Speed of the batched convex-hull projection vs solving the same queries one by one with cvxpy.

Workload: OPOM's per-person work, 160 queries (10 images x 16 optimisation steps) against n = 10
anchors in D = 512, synthetic clustered unit features in float32 (what recognizers emit).

    .venv/bin/pytest tests/benchmarks/test_bench_subspace.py --benchmark-enable -s

With benchmarks disabled (the project default) the benchmark tests run once each, and
``test_batched_convex_is_20x_faster_than_cvxpy`` still times both sides itself and asserts the ratio.
Both sides run on one thread: cvxpy/CLARABEL is single-threaded, and on shared CI cores torch's
thread pool can make n x n matmuls orders of magnitude slower under oversubscription.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest
import torch

from methods.reference_cvxpy import reference_projection
from methods.subspace import convex_hull

B, N, D = 160, 10, 512
MIN_SPEEDUP = 20.0
CVXPY_DEFAULT = dict(solver="CLARABEL")  # OPOM's per-sample solve uses the solver defaults


def _clustered_features(seed: int = 0, cos: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors with pairwise cosine ~``cos`` around an identity direction; queries are other photos
    of the same identity, moved half-way towards another identity (as a mask would)."""
    g = torch.Generator().manual_seed(seed)

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=-1, keepdim=True)

    u, v = unit(torch.randn(D, generator=g)), unit(torch.randn(D, generator=g))

    def around(centre: torch.Tensor, k: int) -> torch.Tensor:
        x = torch.randn(k, D, generator=g)
        return cos**0.5 * centre + (1 - cos) ** 0.5 * unit(x - (x @ centre)[:, None] * centre)

    same = around(u, B)
    return unit(same + 0.5 * (around(v, B) - same)), around(u, N)


@pytest.fixture(scope="module")
def features() -> tuple[torch.Tensor, torch.Tensor]:
    return _clustered_features()


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_bench_convex_batched_shared_anchors(benchmark, features, one_thread) -> None:
    q, A = features
    res = benchmark(convex_hull, q, A)
    assert res.point.shape == (B, D)


def test_bench_convex_batched_per_query_anchors(benchmark, features, one_thread) -> None:
    q, A = features
    res = benchmark(convex_hull, q, A.expand(B, N, D).contiguous())
    assert res.point.shape == (B, D)


def test_bench_convex_cvxpy_one_by_one(benchmark, features) -> None:
    q, A = features
    res = benchmark.pedantic(reference_projection, args=(q, A, "convex"), kwargs=CVXPY_DEFAULT, rounds=2, iterations=1)
    assert res.point.shape == (B, D)


def test_batched_convex_is_20x_faster_than_cvxpy(features, one_thread, capsys) -> None:
    q, A = features
    convex_hull(q, A)  # warm-up (lazy initialisation)
    batched = _best_of(lambda: convex_hull(q, A), repeats=5)
    cvxpy_loop = _best_of(lambda: reference_projection(q, A, "convex", **CVXPY_DEFAULT), repeats=2)
    speedup = cvxpy_loop / batched
    with capsys.disabled():
        print(
            f"\nconvex hull, {B} queries, n={N}, D={D}, float32, 1 thread (best of 5 / 2): "
            f"batched torch {batched * 1e3:.1f} ms, cvxpy one by one {cvxpy_loop * 1e3:.0f} ms "
            f"({cvxpy_loop / B * 1e3:.1f} ms/query), speed-up {speedup:.0f}x"
        )
    assert speedup >= MIN_SPEEDUP, f"batched {batched:.4f}s vs cvxpy {cvxpy_loop:.3f}s: only {speedup:.1f}x"
