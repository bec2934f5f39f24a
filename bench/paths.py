"""Where things live: the read-only ../shared mirror, the cache, and the repository's own folders.

Every location can be overridden with an environment variable, so nothing is hard-coded to this
machine: BENCH_SHARED (the shared data/model mirror), BENCH_CACHE (aligned faces, features),
BENCH_RESULTS (the result store), BENCH_SPLITS (split files), BENCH_REPORTS (tables, figures and
failure reports; default: the committed reports/ folder).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import BenchError

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The checkout this package runs from (the folder holding pyproject.toml)."""
    for parent in [PACKAGE_DIR, *PACKAGE_DIR.parents]:
        if (parent / "pyproject.toml").exists() and (parent / "bench").is_dir():
            return parent
    return Path.cwd()


@lru_cache(maxsize=None)
def shared_dir() -> Path:
    """The shared mirror of datasets and model weights (``../shared`` beside the checkout)."""
    env = os.environ.get("BENCH_SHARED")
    candidates = [Path(env)] if env else []
    for start in (Path.cwd(), repo_root()):
        candidates += [p / "shared" for p in [start, *start.parents]]
    for cand in candidates:
        if (cand / "DATA.md").exists() or (cand / "data").is_dir():
            return cand.resolve()
    raise BenchError(
        "cannot find the shared data folder: set BENCH_SHARED to the folder holding data/ and models/ "
        f"(looked in: {', '.join(str(c) for c in candidates[:4])}, ...)"
    )


def data_dir() -> Path:
    return shared_dir() / "data"


def models_dir() -> Path:
    return shared_dir() / "models"


def cache_dir() -> Path:
    """Derived, re-creatable files (aligned crops, features, masks). Safe to delete."""
    env = os.environ.get("BENCH_CACHE")
    path = Path(env) if env else repo_root() / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def splits_dir() -> Path:
    env = os.environ.get("BENCH_SPLITS")
    return Path(env) if env else repo_root() / "datasets" / "splits"


def results_dir() -> Path:
    env = os.environ.get("BENCH_RESULTS")
    return Path(env) if env else repo_root() / "results"


def reports_dir() -> Path:
    env = os.environ.get("BENCH_REPORTS")
    return Path(env) if env else repo_root() / "reports"
