"""Test-session set-up: every test run starts from an empty cache, so nothing passes thanks to files
left by an earlier run, and nothing outside one session folder is written: not the user's model
registry, not the committed reports/, split files or shipped generators. Real data comes from
../shared (found by bench.paths.shared_dir).

Every ``BENCH_*`` variable is pinned here, whatever the shell had: an inherited ``BENCH_RESULTS`` or
``BENCH_SPLITS`` would make a test read (or write) someone's own run. Only two are read from the shell:
``BENCH_FULL_LFW`` (CI's switch for the 10-minute full LFW re-measure) and ``BENCH_TEST_CACHE`` (a
developer's folder of aligned crops to keep between local runs; CI never sets it). The session folder,
and with it every temporary folder of the run (``tempfile`` and pytest's ``tmp_path`` point into it), is
removed when the session ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.paths import repo_root, shared_dir

READ_FROM_SHELL = {"BENCH_FULL_LFW", "BENCH_TEST_CACHE"}
# committed folders no test may change (tests that read them use repo_root() explicitly)
COMMITTED = ["reports", "datasets/splits", "methods/weights", "results/records", "docs", "README.md"]


def _pin_environment() -> Path:
    """Set every BENCH_* variable for this session (before any bench module computes a path)."""
    try:  # the data is an input: resolved once (from BENCH_SHARED or ../shared), then pinned
        shared = str(shared_dir())
    except BenchError:
        shared = None  # tests that need the data fail with the error naming BENCH_SHARED; the others still run
    shared_dir.cache_clear()
    for name in [n for n in os.environ if n.startswith("BENCH_") and n not in READ_FROM_SHELL]:
        del os.environ[name]
    session = Path(tempfile.mkdtemp(prefix="bench-test-session-")).resolve()
    (session / "tmp").mkdir()
    # every temporary folder of the session (tempfile.mkdtemp in tests and tools, pytest's tmp_path,
    # subprocesses through TMPDIR) lands inside the session folder, removed at the end
    os.environ["TMPDIR"] = str(session / "tmp")
    tempfile.tempdir = str(session / "tmp")
    root = repo_root()
    # copies, not the committed folders: a test that writes splits or trains a generator without its own
    # folder changes the copy (the committed-folder guard below would catch a write to the originals)
    shutil.copytree(root / "datasets" / "splits", session / "splits")
    shutil.copytree(root / "methods" / "weights", session / "generators")
    os.environ.update({
        "BENCH_CACHE": os.environ.get("BENCH_TEST_CACHE") or str(session / "cache"),
        "BENCH_RESULTS": str(session / "results"),
        "BENCH_REPORTS": str(session / "reports"),
        "BENCH_RECORDS": str(session / "records"),  # never the committed results/records
        "BENCH_SPLITS": str(session / "splits"),
        "BENCH_GENERATORS": str(session / "generators"),
        # a developer's own registered models would join `--target all` and the zoo listings
        "BENCH_USER_MODELS": str(session / "user-models.json"),
    })
    if shared:
        os.environ["BENCH_SHARED"] = shared
    return session


SESSION = _pin_environment()
PINNED = {n: v for n, v in os.environ.items() if n.startswith("BENCH_")}


def pytest_unconfigure(config):
    # after every plugin's own session-end work (pytest's tmp_path clean-up runs in sessionfinish)
    shutil.rmtree(SESSION, ignore_errors=True)


def _fingerprint() -> dict[str, tuple[int, int]]:
    root = repo_root()
    out = {}
    for folder in COMMITTED:
        for path in [root / folder] if (root / folder).is_file() else sorted((root / folder).rglob("*")):
            if path.is_file():
                st = path.stat()
                out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


_COMMITTED_STATE = _fingerprint()


def changed_committed_files() -> list[str]:
    """Committed files added, removed or rewritten since the last call (or the session's start)."""
    now = _fingerprint()
    changed = sorted(set(now) ^ set(_COMMITTED_STATE) | {p for p in now if _COMMITTED_STATE.get(p, now[p]) != now[p]})
    _COMMITTED_STATE.clear()
    _COMMITTED_STATE.update(now)  # blame the test that wrote, not every later one
    return changed


@pytest.fixture(autouse=True)
def _committed_folders_stay_untouched():
    """Fail the test that wrote into a committed folder (COMMITTED: reports/, records, docs ...; named in the message)."""
    yield
    changed = changed_committed_files()
    if changed:
        pytest.fail(f"the test changed committed files (write to tmp_path or the $BENCH_* folders instead): {changed[:10]}",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _bench_environment_restored():
    """Every test starts from the session's BENCH_* values: a test that sets one without monkeypatch
    (or a tool it calls) cannot leak it into the tests after it."""
    yield
    for name in [n for n in os.environ if n.startswith("BENCH_") and n not in PINNED]:
        del os.environ[name]
    os.environ.update(PINNED)


# -- tiers: the speed checks in tests/benchmarks run only with --benchmark-enable (`make bench-speed`) --

BENCHMARKS = Path(__file__).parent / "benchmarks"


def pytest_collection_modifyitems(config, items):
    if config.getoption("benchmark_enable", default=False):
        return
    speed = [i for i in items if BENCHMARKS in Path(str(i.path)).parents]
    if speed:
        # without timing their bodies would only re-run ~40 s of crafting and assert shapes: deselected, and said so
        config.hook.pytest_deselected(items=speed)
        items[:] = [i for i in items if i not in speed]


def pytest_report_header(config):
    if not config.getoption("benchmark_enable", default=False):
        return "tests/benchmarks: deselected (speed checks run with `make bench-speed`, i.e. --benchmark-enable)"
    return None


# -- shared real-data fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lfw():
    from bench.data import open_dataset

    return open_dataset("lfw")


@pytest.fixture(scope="session")
def aligned(lfw):
    """aligned(relpaths) -> uint8 N x 112 x 112 x 3 crops of real LFW photos (aligned on first use)."""
    from bench.data import prepare

    def get(relpaths: list[str]):
        prepared = prepare(lfw, only=sorted(set(relpaths)), progress=False)
        return prepared.faces(list(relpaths))

    return get


PAIRS_PER_FOLD = 20  # 10 same + 10 different pairs from each of LFW's 10 folds: 200 pairs, ~400 photos


@pytest.fixture(scope="session")
def lfw_slice(lfw):
    """A fixed slice of the official LFW pairs: (pairs, fold index per pair, sorted unique files)."""
    from bench.verify import lfw_pairs

    pairs, fold_of = lfw_pairs(lfw, PAIRS_PER_FOLD)
    files = sorted({p for a, b, _ in pairs for p in (a, b)})
    return pairs, fold_of, files


@pytest.fixture(scope="session")
def lfw_slice_faces(lfw_slice, aligned):
    """Aligned crops of the slice's photos (uint8 N x 112 x 112 x 3) and their identity names."""
    files = lfw_slice[2]
    return aligned(files), [f.split("/")[0] for f in files]
