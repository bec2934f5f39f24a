"""A second ``prepare`` of the same photos reads the cache: at least 10x faster than aligning them.

    .venv/bin/pytest tests/benchmarks/test_bench_prepare.py --benchmark-enable -s

On 60 real LFW photos with an empty cache, then again; the full-LFW figures are in the README.
"""

from __future__ import annotations

import shutil
import time

from bench.data import FolderPerIdentity, prepare


def test_second_prepare_is_10x_faster(benchmark, lfw, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    for rec in [r for r in lfw.scan().records if r.identity.startswith("B")][:60]:
        (tmp_path / "photos" / rec.identity).mkdir(parents=True, exist_ok=True)
        shutil.copy(lfw.images_root / rec.relpath, tmp_path / "photos" / rec.relpath)
    dataset = FolderPerIdentity("lfw-60", tmp_path / "photos")
    start = time.perf_counter()
    first = prepare(dataset, progress=False)
    cold = time.perf_counter() - start
    benchmark.group = "prepare 60 LFW photos (cached)"
    second = benchmark.pedantic(prepare, args=(dataset,), kwargs={"progress": False}, rounds=3, iterations=1)
    start = time.perf_counter()
    prepare(dataset, progress=False)
    warm = time.perf_counter() - start
    print(f"first prepare {cold:.2f} s, cached {warm:.3f} s ({cold / warm:.0f}x)")
    assert second.status == first.status
    assert cold / warm >= 10
