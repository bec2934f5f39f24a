"""Test-session set-up: every test run starts from an empty cache, so nothing passes thanks to files
left by an earlier run, and nothing outside temporary folders is read or written: not the user's model
registry, not the committed reports/. Real data comes from ../shared (found by bench.paths.shared_dir)."""

from __future__ import annotations

import os
import tempfile

import pytest

# Set before any bench module computes a path. BENCH_TEST_CACHE lets a developer keep aligned crops
# between local runs; CI never sets it.
os.environ["BENCH_CACHE"] = os.environ.get("BENCH_TEST_CACHE") or tempfile.mkdtemp(prefix="bench-test-cache-")
os.environ.setdefault("BENCH_RESULTS", tempfile.mkdtemp(prefix="bench-test-results-"))
# Always set, never inherited: a developer's own registered models would join `--target all` and the
# zoo listings, and a test writing a table or failure report must not change the committed reports/.
# Tests about the committed reports read repo_root() / "reports" explicitly.
_SESSION = tempfile.mkdtemp(prefix="bench-test-session-")
os.environ["BENCH_USER_MODELS"] = os.path.join(_SESSION, "user-models.json")
os.environ["BENCH_REPORTS"] = os.path.join(_SESSION, "reports")


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
