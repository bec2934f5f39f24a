"""bench.api, the notebook entry point: the documented example (docs/examples/notebook_api.py) runs a tiny real
slice end to end, and load() reads a result store and a records folder alike."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from bench import api
from bench.errors import BenchError
from bench.paths import repo_root
from bench.records import export
from bench.store import ResultStore

EXAMPLE = repo_root() / "docs" / "examples" / "notebook_api.py"


def test_the_notebook_example_runs_and_its_rows_load_back(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root()), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(EXAMPLE), "--work", str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "12 cells" in done.stdout and "Top-1 protection (%):" in done.stdout and "opom-convex" in done.stdout
    rows = api.load(tmp_path / "results")
    assert len(rows) == 12 and set(rows["method"]) == {"none", "noise", "opom-convex"}
    assert set(rows["budget"]) == {400.0, 1200.0} and rows["per_identity_hits"].map(len).eq(3).all()
    # the same rows from records (--allow-dirty: tests also run in checkouts being edited); without the run's
    # profile, whose unit costs a short run leaves for the export to measure (a minute)
    shutil.rmtree(tmp_path / "results" / "profiles")
    export(ResultStore(tmp_path / "results"), tmp_path / "records", allow_dirty=True)
    again = api.load(tmp_path / "records")
    assert again.equals(rows)


def test_run_and_load_refuse_bad_input_in_one_line(tmp_path):
    with pytest.raises(BenchError, match="unknown option.*budget.*known: .*budgets"):
        api.run(methods="none", sources="mobileface", targets="mobileface", budget=1200)
    with pytest.raises(BenchError, match="neither result cells"):
        api.load(tmp_path)
    with pytest.raises(BenchError, match="not a folder"):
        api.load(tmp_path / "missing")
