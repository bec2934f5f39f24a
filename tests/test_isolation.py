"""The test session's isolation (tests/conftest.py): a shell full of BENCH_* variables changes nothing, every
temporary folder is gone when the session ends, a write into the committed folders fails the test that made
it, and the speed checks run only when asked for.

Each check runs an inner pytest session in a subprocess with this conftest loaded as a plugin, on a probe
test written to tmp_path, so the outer session's own environment is never the one being judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.paths import repo_root

TESTS = Path(__file__).resolve().parent

PROBE = '''
import json, os, tempfile
from pathlib import Path
from bench.paths import cache_dir, reports_dir, results_dir, splits_dir

def test_probe(tmp_path):
    Path(os.environ["PROBE_OUT"]).write_text(json.dumps({
        "env": {n: v for n, v in os.environ.items() if n.startswith("BENCH_")},
        "tempdir": tempfile.mkdtemp(), "tmp_path": str(tmp_path),
        "paths": [str(cache_dir()), str(reports_dir()), str(results_dir()), str(splits_dir())]}))
'''

WRITER = '''
from bench.paths import repo_root

def test_writes_into_the_committed_reports():
    (repo_root() / "reports" / "{name}").write_text("a stray table")

def test_after_it_is_not_blamed():
    pass
'''


def inner_pytest(tmp_path: Path, source: str, extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(source)
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join([str(repo_root()), str(TESTS)])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "--rootdir", str(tmp_path),
                           "-c", os.devnull, str(tmp_path / "test_inner.py"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_polluted_shell_is_overridden_and_every_temporary_folder_is_removed(tmp_path):
    polluted = {"BENCH_RESULTS": str(tmp_path / "someone-elses-results"), "BENCH_SPLITS": str(tmp_path / "their-splits"),
                "BENCH_REPORTS": str(tmp_path / "their-reports"), "BENCH_GENERATORS": str(tmp_path / "their-ckpt"),
                "BENCH_CACHE": str(tmp_path / "their-cache"), "BENCH_SOMETHING_NEW": "1",
                "PROBE_OUT": str(tmp_path / "probe.json")}
    done = inner_pytest(tmp_path, PROBE, polluted)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    seen = json.loads((tmp_path / "probe.json").read_text())
    env = seen["env"]
    assert "BENCH_SOMETHING_NEW" not in env, "an unknown inherited BENCH_* variable is dropped"
    for name, value in polluted.items():
        if name.startswith("BENCH_"):
            assert env.get(name) != value, f"{name} was inherited from the shell"
    session = Path(env["BENCH_RESULTS"]).parent
    assert session.name.startswith("bench-test-session-")
    for path in [seen["tempdir"], seen["tmp_path"], *seen["paths"], env["BENCH_GENERATORS"], env["BENCH_USER_MODELS"]]:
        assert Path(path).is_relative_to(session), f"{path} is outside the session folder"
    assert Path(env["BENCH_SHARED"]).is_dir()
    assert not session.exists(), "the session folder (and every temporary folder in it) is removed at the end"


def test_a_test_writing_into_the_committed_reports_fails_and_only_it(tmp_path):
    name = f"zz-probe-{os.getpid()}.csv"
    stray = repo_root() / "reports" / name
    try:
        done = inner_pytest(tmp_path, WRITER.replace("{name}", name), {}, "-rA")
    finally:
        stray.unlink(missing_ok=True)
    out = done.stdout
    assert done.returncode == 1, out[-2000:]
    assert f"ERROR at teardown of test_writes_into_the_committed_reports" in out and f"reports/{name}" in out, out[-2000:]
    assert "PASSED test_inner.py::test_after_it_is_not_blamed" in out, out[-2000:]


def test_the_speed_checks_are_deselected_unless_benchmarking_is_enabled():
    args = [sys.executable, "-m", "pytest", "-q", "--collect-only", str(TESTS / "benchmarks")]
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    plain = subprocess.run(args, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    enabled = subprocess.run(args + ["--benchmark-enable"], cwd=repo_root(), env=env, capture_output=True, text=True,
                             timeout=300)
    assert "no tests collected" in plain.stdout and "deselected" in plain.stdout, plain.stdout[-1000:]
    assert "test_batched_convex_is_20x_faster_than_cvxpy" in enabled.stdout, enabled.stdout[-1000:]


def test_no_test_fixes_a_rendezvous_port():
    """A fixed --master_port makes two test runs on one machine (two CI jobs, two developers) fail each other."""
    for path in TESTS.rglob("*.py"):
        if path != Path(__file__).resolve():
            assert "--master_port" not in path.read_text(), path
