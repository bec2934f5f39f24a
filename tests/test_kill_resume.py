"""A `bench run` process killed with SIGKILL mid-run (no Python clean-up at all: the machine's power cut, the
OOM killer) leaves only whole cells behind, and the same command run again finishes to the rows of an
uninterrupted run. Real LFW slice (tests/mini_splits.py), real recognizers, the CLI in a subprocess;
tests/test_runner.py covers the in-process Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.paths import repo_root
from bench.runner import RunConfig, Runner
from bench.store import ResultStore
from mini_splits import write_mini_splits

METHODS, SOURCE, TARGETS = ["none", "noise", "fi-uap"], "mobileface", ["mobileface", "dlib-resnet"]
CELLS = len(METHODS) * len(TARGETS)
COLUMNS = ["top1_protection", "top5_protection", "top1_clean_accuracy", "ssim", "l2_realised", "tpr_at_far",
           "per_identity_hits", "per_identity_pairs"]


def bench_run(results, splits) -> subprocess.Popen:
    env = {**os.environ, "BENCH_SPLITS": str(splits), "PYTHONPATH": str(repo_root())}
    return subprocess.Popen([sys.executable, "-m", "bench.cli", "run", "--methods", ",".join(METHODS), "--source", SOURCE,
                             "--target", ",".join(TARGETS), "--split", "commons", "--param", "fi-uap.steps=2",
                             "--device", "cpu", "--results", str(results)],
                            env=env, cwd=repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cell_files(results):
    return sorted((results / "cells").glob("*.json")) if (results / "cells").is_dir() else []


def table(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows).sort_values("cell").set_index("cell")[COLUMNS]
    return df.map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)


@pytest.mark.slow
def test_a_bench_run_killed_with_sigkill_resumes_to_the_same_rows(tmp_path, lfw, monkeypatch):
    splits = write_mini_splits(tmp_path / "splits", lfw)
    monkeypatch.setenv("BENCH_SPLITS", str(splits))
    cfg = RunConfig(methods=METHODS, sources=[SOURCE], targets=TARGETS, split="commons", budgets=[1200.0],
                    params={"fi-uap": {"steps": 2}}, device="cpu")
    reference = Runner(cfg, ResultStore(tmp_path / "reference"), progress=False).run()
    assert len(reference) == CELLS

    results = tmp_path / "killed"
    proc = bench_run(results, splits)
    deadline = time.monotonic() + 600
    while len(cell_files(results)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    left = cell_files(results)
    assert 2 <= len(left) < CELLS, f"killed mid-run: {len(left)} of {CELLS} cells written"
    for path in left:
        json.loads(path.read_text())  # whole cells only: a cell is written to a temporary name, then renamed
    assert len(ResultStore(results).rows()) == len(left)
    written = {p: p.stat().st_mtime_ns for p in left}

    proc = bench_run(results, splits)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    assert f"{CELLS} cells in {results}" in output
    resumed = ResultStore(results).rows()
    assert not (results / "quarantine").exists() or not any((results / "quarantine").iterdir()), "nothing was damaged"
    pd.testing.assert_frame_equal(table(resumed), table(reference))
    assert all(p.stat().st_mtime_ns == t for p, t in written.items()), "the cells of the killed run were kept, not redone"
