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

PEOPLE = ["Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi"]
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
    from bench.data import open_dataset
    from bench.data.splits import make_splits, write_splits
    from bench.runner import RunConfig, Runner
    from bench.store import ResultStore

    root = Path(tempfile.mkdtemp(prefix="bench-report-run-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    records = open_dataset("lfw").scan().records
    usable = [r for r in records if r.identity in PEOPLE and int(r.relpath[-8:-4]) <= 15]
    others = sorted({r.identity for r in records if r.identity not in PEOPLE and r.identity.startswith("Al")})[:30]
    usable += [r for r in records if r.identity in others and int(r.relpath[-8:-4]) <= 2]
    write_splits(make_splits(usable, [], seed=0), seed=0, aligner_version="test", folder=root / "splits")
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
