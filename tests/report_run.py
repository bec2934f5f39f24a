"""A small real run for the report tests (tests/test_figures.py, tests/test_page.py), made once per session.

Real LFW photos and real recognizers, the pattern of tests/test_runner.py: 3 people (10 inference + 5 test
photos each, so the `commons` split) against 60 distractor photos; masks from mobileface by none, noise,
FI-UAP and OPOM-ConvexHull (2 steps each) and the shipped AdvCloak-ConvexHull generator, at two L2 budgets
and two numbers of inference photos; targets mobileface (white-box) and dlib-resnet
(black-box). The photos are test_runner's, so a full test session aligns them once.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mini_splits import PEOPLE, write_mini_splits  # noqa: F401 (PEOPLE: test_figures imports it from here)

SOURCE = "mobileface"
TARGETS = ["mobileface", "dlib-resnet"]
METHODS = ["none", "noise", "fi-uap", "opom-convex", "advcloak-convex"]
BUDGETS = [400.0, 1200.0]
N_INFERENCE = [3, 10]
PARAMS = {"fi-uap": {"steps": 2}, "opom-convex": {"steps": 2, "warmup": 1}}


@dataclass(frozen=True)
class RealRun:
    splits: Path  # BENCH_SPLITS for anything that loads the split (the visual grids)
    results: Path  # the result store
    rows: tuple  # the run's rows


@lru_cache(maxsize=None)
def real_run() -> RealRun:
    from bench.runner import RunConfig, Runner
    from bench.store import ResultStore

    root = Path(tempfile.mkdtemp(prefix="bench-report-run-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    write_mini_splits(root / "splits")
    before = os.environ.get("BENCH_SPLITS")
    os.environ["BENCH_SPLITS"] = str(root / "splits")
    try:
        cfg = RunConfig(methods=METHODS, sources=[SOURCE], targets=TARGETS, split="commons", budgets=BUDGETS,
                        n_inference=N_INFERENCE, params=PARAMS)
        rows = Runner(cfg, ResultStore(root / "results"), progress=False).run()
    finally:
        if before is None:
            os.environ.pop("BENCH_SPLITS", None)
        else:
            os.environ["BENCH_SPLITS"] = before
    return RealRun(root / "splits", root / "results", tuple(rows))
