"""Installable, not only runnable from a checkout: a wheel built from the sources, installed (not editable)
into a folder of its own, works from an empty working folder beside ../shared and writes only there.

Slow (a wheel build, ~600 photos aligned): marked `slow`, still run in CI. The preparation step uses the
pre-aligned `glint-celeb24` (2,259 photos, seconds) rather than all of LFW (13,233 photos, ~10 min here),
and the run's gallery is a small split made in the working folder, so only the `commons` people's LFW
photos are aligned."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.paths import repo_root, shared_dir

SOURCES = ["bench", "methods", "datasets", "pyproject.toml", "setup.py", "README.md"]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_runs_from_an_empty_folder_and_writes_only_there(tmp_path):
    src = tmp_path / "src"  # the wheel is built from a copy: pip builds in-tree, and a test writes only under tmp
    src.mkdir()
    for name in SOURCES:
        path = repo_root() / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(path, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("cloakbench-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    assert (site / "bench" / "shipped_splits" / "commons.csv").exists()  # split files are package data
    installed = _files(site)

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(PYTHONPATH=str(site), BENCH_SHARED=str(shared_dir()), BENCH_ALIGN_WORKERS="2")

    def bench(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"bench {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    where = subprocess.run([sys.executable, "-c", "import bench; print(bench.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where  # the installed copy, not the checkout's editable one
    assert "mobileface" in bench("zoo", "list")
    bench("data", "prepare", "glint-celeb24")
    bench("data", "split", "tinygal", "--from", "glint-celeb24", "--inference", "2", "--test", "2",
          "--identities", "Barack_Obama,Hugh_Jackman")
    out = bench("run", "--methods", "none,noise", "--source", "mobileface", "--target", "mobileface", "--split", "commons",
                "--gallery", "tinygal", "--report")
    assert (work / "datasets" / "splits" / "tinygal.csv").exists()
    assert list((work / "results" / "cells").glob("*.json")) and (work / ".cache").is_dir()
    assert (work / "reports").is_dir() and str(work / "reports") in out  # it says where it wrote
    assert _files(site) == installed  # nothing written beside the installed code
    cells = list((work / "results" / "cells").glob("*.json"))
    assert '"installed:cloakbench-' in cells[0].read_text()  # provenance names the package, not a foreign repo
