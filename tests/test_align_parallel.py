"""Alignment in worker processes gives the serial path's crops bit for bit (the parallel lever of `bench
data prepare` must not move a single grey level), in the same order, with the same statuses."""

from __future__ import annotations

import numpy as np

from bench.data import open_dataset, prepare
from bench.data.prepare import PARALLEL_FROM, align_workers

# real LFW photos of three people, one of them grayscale-looking in places; small enough for two spawns
FILES = [f"{name}/{name}_{n:04d}.jpg" for name in ("Aaron_Peirsol", "Abdullah_Gul", "Ai_Sugiyama") for n in (1, 2, 3, 4)]


def _prepared(monkeypatch, tmp_path, workers: str | None):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / f"cache-{workers or 'serial'}"))
    if workers:
        monkeypatch.setenv("BENCH_ALIGN_WORKERS", workers)
    else:
        monkeypatch.delenv("BENCH_ALIGN_WORKERS", raising=False)
    return prepare(open_dataset("lfw"), only=FILES, progress=False)


def test_two_worker_processes_give_the_serial_crops_bit_for_bit(monkeypatch, tmp_path):
    serial = _prepared(monkeypatch, tmp_path, None)
    parallel = _prepared(monkeypatch, tmp_path, "2")
    assert serial.status == parallel.status and all(s in ("ok", "grayscale") for s in serial.status)
    a, b = serial.faces(FILES), parallel.faces(FILES)
    assert a.shape == (len(FILES), 112, 112, 3)
    assert np.array_equal(a, b)
    assert [d for d, _ in serial.landmarks(FILES)] == [d for d, _ in parallel.landmarks(FILES)]


def test_worker_count_follows_the_batch_size_and_the_override(monkeypatch):
    from bench.data.prepare import one_per_core

    monkeypatch.delenv("BENCH_ALIGN_WORKERS", raising=False)
    monkeypatch.delenv("BENCH_ALIGN_AUTO", raising=False)
    assert align_workers(10_000) == 1  # a library call aligns in-process
    monkeypatch.setenv("BENCH_ALIGN_AUTO", "1")  # as the `bench` command sets it
    assert align_workers(PARALLEL_FROM - 1) == 1  # too few photos to repay starting processes
    assert align_workers(10_000) == one_per_core()
    monkeypatch.setenv("BENCH_ALIGN_WORKERS", "3")
    assert align_workers(2) == 2 and align_workers(100) == 3
    monkeypatch.setenv("BENCH_ALIGN_WORKERS", "0")
    import pytest

    from bench.errors import BenchError

    with pytest.raises(BenchError, match="BENCH_ALIGN_WORKERS"):
        align_workers(100)
