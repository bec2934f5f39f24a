"""`bench run --executor ray` on a small real slice (3 LFW people, real recognizers, a real local Ray
cluster): the serial run's rows exactly, and a run killed mid-way resumes losing and doubling nothing."""

from __future__ import annotations

import sys

import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.runner import RunConfig, Runner
from bench.store import ResultStore
from interrupting_store import InterruptingStore
from mini_splits import write_mini_splits

# Fields saying where and how fast a row was made, not what it measured: `provenance` names the machine and
# its thread count (a Ray task runs on one thread), `t1`/`t2` are craft times in seconds.
MACHINE_FIELDS = ("provenance", "t1", "t2")


def config() -> RunConfig:
    # two budgets: each job's cells become two score tasks (one protected set each)
    return RunConfig(methods=["none", "noise", "fi-uap"], sources=["mobileface"], targets=["mobileface", "dlib-resnet"],
                     split="commons", budgets=[600.0, 1200.0], params={"fi-uap": {"steps": 2}})


def measured(rows: list[dict]) -> dict[str, dict]:
    return {r["cell"]: {k: v for k, v in r.items() if k not in MACHINE_FIELDS} for r in rows}


def differences(rows: list[dict], reference: list[dict]) -> list[str]:
    """'cell method field: got != expected' for every measured field that differs (empty: identical rows)."""
    got, want = measured(rows), measured(reference)
    out = [f"cells {sorted(set(got) ^ set(want))} in one run only"] if set(got) != set(want) else []
    for cell in sorted(set(got) & set(want)):
        for field in sorted(set(got[cell]) | set(want[cell])):
            if got[cell].get(field) != want[cell].get(field):
                out.append(f"{cell} {want[cell]['method']} {field}: {got[cell].get(field)!r} != {want[cell].get(field)!r}")
    return out


@pytest.fixture(scope="module")
def mini_splits(tmp_path_factory, lfw):
    return write_mini_splits(tmp_path_factory.mktemp("splits"), lfw)


@pytest.fixture(scope="module")
def serial(mini_splits, tmp_path_factory):
    """The serial run's rows, on one thread as each Ray task runs: torch's CPU kernels split their sums by
    thread, so a gradient crafted on 2 threads differs from one crafted on 1 in the last float bits."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_SPLITS", str(mini_splits))
        torch.set_num_threads(1)
        try:
            rows = Runner(config(), ResultStore(tmp_path_factory.mktemp("serial")), progress=False).run()
        finally:
            torch.set_num_threads(threads)
    assert len(rows) == 3 * 2 * 2
    return rows


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster, small (2 CPUs, an 80 MB object store, no dashboard), shut down after the module."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, object_store_memory=80 * 2**20, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


def test_ray_run_gives_the_serial_rows(serial, ray_cluster, mini_splits, monkeypatch, tmp_path):
    from bench.executor_ray import RayRunner

    monkeypatch.setenv("BENCH_SPLITS", str(mini_splits))
    runner = RayRunner(config(), ResultStore(tmp_path), progress=False)
    rows = runner.run()
    assert differences(rows, serial) == []
    assert all(r["provenance"]["device"].endswith("x1 threads") for r in rows)  # made in Ray tasks, one thread each
    # the driver saved each crafted mask set once (none, noise, fi-uap), and profiled the workers' stages
    assert len(list((tmp_path / "masks").glob("*.safetensors"))) == 3
    stages = {s["stage"]: s for s in ResultStore(tmp_path).profiles()[-1]["stages"]}
    assert stages["write"]["items"] == 12 and stages["protect"]["calls"] == 6
    assert {"craft:fi-uap@mobileface", "embed:mobileface", "score:identification"} <= set(stages)
    assert ResultStore(tmp_path).profiles()[-1]["ray_nodes"] == 1


def test_killed_ray_run_resumes_losing_and_doubling_nothing(serial, ray_cluster, mini_splits, monkeypatch, tmp_path):
    from bench.executor_ray import RayRunner

    monkeypatch.setenv("BENCH_SPLITS", str(mini_splits))
    with pytest.raises(KeyboardInterrupt):
        RayRunner(config(), InterruptingStore(tmp_path, after=5), progress=False).run()
    assert len(list((tmp_path / "cells").glob("*.json"))) == 5  # whole cells only
    rows = RayRunner(config(), ResultStore(tmp_path), progress=False).run()
    assert len(list((tmp_path / "cells").glob("*.json"))) == len(serial)
    assert differences(rows, serial) == []


def test_executor_ray_without_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    result = CliRunner().invoke(main, ["run", "--methods", "none", "--target", "mobileface", "--executor", "ray",
                                       "--results", str(tmp_path)])
    assert result.exit_code != 0
    assert "pip install -e '.[ray]'" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_address_needs_the_ray_executor(tmp_path):
    result = CliRunner().invoke(main, ["run", "--methods", "none", "--target", "mobileface", "--address", "auto",
                                       "--results", str(tmp_path)])
    assert result.exit_code != 0 and "--executor ray" in result.output
