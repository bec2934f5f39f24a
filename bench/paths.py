"""Where things live: the read-only ../shared mirror, the cache, and the repository's own folders.

Every location can be overridden with an environment variable, so nothing is hard-coded to this
machine: BENCH_SHARED (the shared data/model mirror), BENCH_CACHE (aligned faces, features),
BENCH_RESULTS (the result store), BENCH_SPLITS (split files), BENCH_REPORTS (tables, figures and
failure reports).

What a run writes goes under the **working directory** (``.cache/``, ``results/``, ``reports/``,
``datasets/splits/`` for new splits), never beside the installed code: an installed wheel, or a venv
installed in editable mode from one clone and run from another, writes where it is run. In a checkout
``make run`` runs from the repository root, so there these are the committed folders. The built-in
split files ship with the package (``bench/shipped_splits/``, copied from ``datasets/splits/`` when the
wheel is built; a checkout reads ``datasets/splits/`` itself).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import BenchError

PACKAGE_DIR = Path(__file__).resolve().parent


# Set by the `bench` command (whose main guard spawned worker processes need): align large batches on every core.
ALIGN_AUTO_ENV = "BENCH_ALIGN_AUTO"


def checkout_root() -> Path | None:
    """The checkout this package runs from (the folder holding pyproject.toml), or None when installed."""
    for parent in [PACKAGE_DIR, *PACKAGE_DIR.parents]:
        if (parent / "pyproject.toml").exists() and (parent / "bench").is_dir():
            return parent
    return None


def repo_root() -> Path:
    """The checkout (for what only a checkout has: tests, the regression baseline); the working directory
    when the package is installed."""
    return checkout_root() or Path.cwd()


def work_dir() -> Path:
    """Where run outputs go by default: the folder the command runs in."""
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
    path = Path(env) if env else work_dir() / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def splits_dir() -> Path:
    """Where new split files are written, and looked for first: BENCH_SPLITS, else ``datasets/splits`` under
    the working directory."""
    env = os.environ.get("BENCH_SPLITS")
    return Path(env) if env else work_dir() / "datasets" / "splits"


def shipped_splits_dir() -> Path:
    """The built-in split files: the checkout's ``datasets/splits``, or the copy inside an installed wheel."""
    checkout = checkout_root()
    if checkout is not None and (checkout / "datasets" / "splits").is_dir():
        return checkout / "datasets" / "splits"
    return PACKAGE_DIR / "shipped_splits"


def split_search_path() -> list[Path]:
    """Folders a split name is looked up in, in order (BENCH_SPLITS alone when set: a test or a user who
    points it somewhere means only that folder)."""
    if os.environ.get("BENCH_SPLITS"):
        return [splits_dir()]
    return list(dict.fromkeys([splits_dir(), shipped_splits_dir()]))


def results_dir() -> Path:
    env = os.environ.get("BENCH_RESULTS")
    return Path(env) if env else work_dir() / "results"


def reports_dir() -> Path:
    env = os.environ.get("BENCH_REPORTS")
    return Path(env) if env else work_dir() / "reports"
