"""The CLI and the report at their edges: every bad option is refused before any work starts, reports
are written only when asked and never truncated by an empty run, and tables keep settings apart."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import BenchError
from bench.paths import reports_dir, repo_root
from bench.reporting import write_reports
from bench.reporting.tables import efficiency_table, protection_table

RUN = ["run", "--methods", "none,opom-center", "--source", "mobileface", "--target", "mobileface"]


class NoRunner:
    """Stands in for bench.runner.Runner: a bad option must be refused before a Runner exists."""

    def __init__(self, *args, **kwargs):
        raise AssertionError("the Runner was created: work started despite a bad option")


class EmptyRunner:
    """A run that measured nothing (every cell filtered out)."""

    def __init__(self, config, store=None, progress=True):
        type(self).config = config

    def run(self):
        return []


@pytest.fixture()
def no_work(monkeypatch, tmp_path):
    monkeypatch.setattr("bench.runner.Runner", NoRunner)
    monkeypatch.setenv("BENCH_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    return tmp_path


def refused(args: list[str], *expected: str) -> str:
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0, r.output
    assert "Traceback" not in r.output and "AssertionError" not in repr(r.exception), r.output
    for text in expected:
        assert text in r.output, r.output
    return r.output


@pytest.mark.parametrize("budget", ["nan", "-1200", "inf", "0", "12oo", ","])
def test_run_refuses_budgets_that_are_not_finite_and_positive(no_work, budget):
    refused(RUN + ["--budget", budget], "--budget takes finite numbers > 0")


@pytest.mark.parametrize("seed", ["1.5", "-1", "one", str(2**63)])
def test_run_refuses_seeds_that_are_not_integers_from_zero(no_work, seed):
    refused(RUN + ["--seed", seed], "--seed takes integers from 0", repr(seed))


@pytest.mark.parametrize("n", ["0", "1.5", "-3", "ten"])
def test_run_refuses_n_inference_below_one_or_fractional(no_work, n):
    refused(RUN + ["--n-inference", n], "--n-inference takes integers >= 1", repr(n))


@pytest.mark.parametrize("param, expected", [
    ("opom-centre.steps=8", ["'opom-centre' is not a method of this run", "this run's methods: none, opom-center"]),
    ("fi-uap.steps=8", ["'fi-uap' is not a method of this run"]),
    ("opom-center.lr=0.1", ["has no parameter(s) lr", "its parameters: eps, start, step, steps"]),
    ("opom-center.steps=1.5", ["parameter steps must be an integer >= 1, got 1.5"]),
    ("opom-center.steps=many", ["parameter steps must be an integer >= 1, got 'many'"]),
    ("opom-center.steps=0", ["parameter steps must be an integer >= 1, got 0"]),
    ("opom-center.steps=true", ["parameter steps must be an integer >= 1, got True"]),
    ("opom-center.eps=nan", ["parameter eps must be a finite number >= 0, got nan"]),
    ("opom-center.start=-1", ["parameter start must be a finite number >= 0, got -1"]),
    ("opom-center.steps", ["--param expects METHOD.KEY=VALUE"]),
])
def test_run_refuses_params_of_other_methods_unknown_keys_and_bad_values(no_work, param, expected):
    refused(RUN + ["-p", param], *expected)


def test_run_refuses_negative_warmup_and_lowkey_blur(no_work):
    refused(["run", "--methods", "opom-convex", "--source", "mobileface", "--target", "mobileface",
             "-p", "opom-convex.warmup=-1"], "parameter warmup must be an integer >= 0, got -1")
    refused(["run", "--methods", "lowkey", "--source", "mobileface", "--target", "mobileface",
             "-p", "lowkey.blur_sigma=0"], "parameter blur_sigma must be a finite number > 0")


def test_create_method_checks_overrides_as_the_cli_does():
    from methods import create_method
    from methods.base import MaskMethod, validate_overrides

    with pytest.raises(BenchError, match="parameter steps must be an integer >= 1, got -3"):
        create_method("opom-center", steps=-3)
    with pytest.raises(BenchError, match="parameter eps must be a finite number >= 0, got inf"):
        create_method("opom-center", eps=float("inf"))
    # an int for a float field is stored as a float: eps=8 is the default config, not a new one
    assert create_method("opom-center", eps=8).config() == create_method("opom-center").config()

    @dataclasses.dataclass
    class FlagParams:
        flag: bool = False

    class Flagged(MaskMethod):
        name, Params = "flagged", FlagParams

    assert validate_overrides(Flagged, {"flag": True}) == {"flag": True}
    for bad in ("yes", 1):
        with pytest.raises(BenchError, match="parameter flag must be true or false"):
            validate_overrides(Flagged, {"flag": bad})


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tpu", "banana", "cpu:1"])
def test_run_refuses_devices_that_do_not_exist_here(no_work, monkeypatch, device):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    refused(RUN + ["--device", device], f"--device {device!r} is not a device here", "available: cpu")


def test_run_refuses_a_cuda_index_past_the_device_count(no_work, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    refused(RUN + ["--device", "cuda:1"], "available: cpu, cuda, cuda:0")


def test_valid_options_reach_the_runner_checked_and_typed(no_work, monkeypatch):
    monkeypatch.setattr("bench.runner.Runner", EmptyRunner)
    r = CliRunner().invoke(main, RUN + ["--budget", "400, 1200", "--seed", "0,3", "--n-inference", "1,10",
                                        "--device", "cpu", "-p", "opom-center.eps=8", "-p", "opom-center.steps=2"])
    assert r.exit_code == 0, r.output
    cfg = EmptyRunner.config
    assert cfg.budgets == [400.0, 1200.0] and cfg.seeds == [0, 3] and cfg.n_inference == [1, 10]
    assert cfg.device == "cpu"
    assert cfg.params == {"opom-center": {"eps": 8.0, "steps": 2}} and isinstance(cfg.params["opom-center"]["eps"], float)


def test_run_writes_reports_only_when_asked(no_work, monkeypatch):
    calls = []
    monkeypatch.setattr("bench.runner.Runner", type("OneRow", (EmptyRunner,), {"run": lambda self: [{"cell": "x"}]}))
    monkeypatch.setattr("bench.reporting.write_reports", lambda rows, out=None, *a, **kw: calls.append(out) or [])
    cli = CliRunner()
    assert cli.invoke(main, RUN).exit_code == 0 and calls == []  # the default: no reports
    assert cli.invoke(main, RUN + ["--report"]).exit_code == 0 and calls == [no_work / "reports"]
    assert cli.invoke(main, RUN + ["--out", str(no_work / "elsewhere")]).exit_code == 0
    assert calls[-1] == no_work / "elsewhere"
    refused(RUN + ["--no-report", "--out", str(no_work / "x")], "--no-report")
    run_target = (repo_root() / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert run_target.rstrip().endswith("bench report"), "make run must still write the tables, after its runs"


def test_reports_dir_follows_bench_reports(monkeypatch, tmp_path):
    monkeypatch.delenv("BENCH_REPORTS", raising=False)
    assert reports_dir() == repo_root() / "reports"
    monkeypatch.setenv("BENCH_REPORTS", str(tmp_path))
    assert reports_dir() == tmp_path


def test_empty_runs_leave_the_reports_folder_alone(no_work, monkeypatch):
    reports = no_work / "reports"
    reports.mkdir()
    (reports / "table1_celebrities.csv").write_text("committed\n")
    before = {p.name: p.read_text() for p in reports.iterdir()}
    refused(["run", "--methods", "", "--report"], "--methods needs at least one method name")
    monkeypatch.setattr("bench.runner.Runner", EmptyRunner)
    r = CliRunner().invoke(main, RUN + ["--report"])
    assert r.exit_code == 0 and "no reports written" in r.output, r.output
    assert write_reports([], reports) == []
    assert {p.name: p.read_text() for p in reports.iterdir()} == before
    assert write_reports([], no_work / "never-made") == [] and not (no_work / "never-made").exists()


@pytest.fixture()
def glint_copy(tmp_path):
    """Two identities of Glint's aligned crops plus one unreadable file, as a user's own copy."""
    from bench.paths import data_dir

    root = tmp_path / "glint-copy"
    for ident in ("Barack_Obama", "Daniel_Radcliffe"):
        (root / ident).mkdir(parents=True)
        first = sorted((data_dir() / "glint-celeb24-112" / ident).iterdir())[0]
        shutil.copy(first, root / ident / first.name)
    (root / "Barack_Obama" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_prepare_of_another_copy_keeps_the_committed_failure_report(glint_copy, monkeypatch, tmp_path):
    from bench.paths import cache_dir

    monkeypatch.delenv("BENCH_REPORTS", raising=False)
    committed = repo_root() / "reports" / "data" / "glint-celeb24-failures.csv"
    before = committed.read_bytes()
    r = CliRunner().invoke(main, ["data", "prepare", "glint-celeb24", "--root", str(glint_copy)])
    assert r.exit_code == 0, r.output
    scratch = cache_dir() / "reports" / "data" / "glint-celeb24-failures.csv"
    assert f"failure report: {scratch}" in r.output and "broken.jpg" in scratch.read_text()
    assert committed.read_bytes() == before
    r = CliRunner().invoke(main, ["data", "prepare", "glint-celeb24", "--root", str(glint_copy),
                                  "--report-dir", str(tmp_path / "mine")])
    assert r.exit_code == 0 and "broken.jpg" in (tmp_path / "mine" / "glint-celeb24-failures.csv").read_text()
    assert committed.read_bytes() == before


def test_only_default_copies_report_to_the_committed_folder(glint_copy, monkeypatch, tmp_path):
    from bench.cli_data import _reports_for
    from bench.data import open_dataset
    from bench.paths import cache_dir

    monkeypatch.delenv("BENCH_REPORTS", raising=False)
    assert _reports_for(open_dataset("glint-celeb24")) == repo_root() / "reports"
    assert _reports_for(open_dataset("glint-celeb24", glint_copy)) == cache_dir() / "reports"
    monkeypatch.setenv("BENCH_REPORTS", str(tmp_path / "mine"))
    assert _reports_for(open_dataset("glint-celeb24", glint_copy)) == tmp_path / "mine"


def cell(method="opom-center", config="default", target="dlib-resnet", seed=0, protection=0.5, **kw) -> dict:
    """One synthetic stored cell (the fields the report reads)."""
    params = {"method": method, "eps": 8.0, "step": 1.0, "steps": 16, "start": 1.0, **kw.pop("params", {})}
    row = dict(split="celebrities", source="mobileface", method=method, method_config=config, target=target,
               weights=f"w-mobileface->w-{target}", budget=1200.0, seed=seed, n_inference=10,
               protocol="ident-v1/distractors/k1,5/far0.001", top1_protection=protection, top5_protection=protection / 2,
               top1_clean_accuracy=0.9, top5_clean_accuracy=0.95, white_box=target == "mobileface", kind="person",
               t1=1.0, t2=None, ssim=0.9, method_params=params, cell=f"{method}-{config}-{target}-{seed}")
    row.update(kw)
    return row


def test_report_keeps_method_configs_apart_with_synthetic_rows():
    rows = pd.DataFrame([
        cell(seed=0, protection=0.5), cell(seed=1, protection=0.7),  # the default config, two seeds
        cell(config="eight", protection=0.1, params={"steps": 8}),  # another config: not a third seed
        cell(method="none", config="none", protection=0.1, method_params={"method": "none"}, source="-",
             weights="->w-dlib-resnet", n_inference=0, kind="baseline"),
    ])
    table, _ = protection_table(rows, "celebrities", targets=["dlib-resnet"])
    assert table.loc[("mobileface", "opom-center"), ("dlib-resnet", "Top-1")] == pytest.approx(60.0)
    assert table.loc[("mobileface", "opom-center [steps=8]"), ("dlib-resnet", "Top-1")] == pytest.approx(10.0)
    assert table.loc[("clean accuracy", "(no mask)"), ("dlib-resnet", "Top-1")] == pytest.approx(90.0)
    assert len(table) == 1 + 3
    eff = efficiency_table(rows)
    assert set(eff.index) == {"opom-center", "opom-center [steps=8]"}
    assert eff.loc["opom-center", "avg Top-1 protection (%)"] == pytest.approx(60.0)


def test_report_labels_configs_with_equal_params_by_hash_with_synthetic_rows():
    rows = pd.DataFrame([cell(config="aaaaaaaa11"), cell(config="bbbbbbbb22", protection=0.9)])
    table, _ = protection_table(rows, "celebrities")
    assert {"opom-center [config=aaaaaaaa]", "opom-center [config=bbbbbbbb]"} <= {m for _, m in table.index}


def test_report_refuses_two_weights_of_one_target_with_synthetic_rows():
    rows = pd.DataFrame([cell(), cell(seed=1, weights="w-mobileface->w-dlib-resnet-v2")])
    with pytest.raises(BenchError, match="target 'dlib-resnet' appears with 2 different weights"):
        protection_table(rows, "celebrities")


def test_report_refuses_rates_outside_zero_one_with_synthetic_rows(tmp_path):
    with pytest.raises(BenchError, match=r"cell opom-center-default-dlib-resnet-0 .*top1_protection = 7.5"):
        protection_table(pd.DataFrame([cell(protection=7.5)]), "celebrities")
    with pytest.raises(BenchError, match="top1_clean_accuracy = -0.1"):
        write_reports([cell(top1_clean_accuracy=-0.1)], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # the same through `bench report` on a hand-edited store
    cells = tmp_path / "store" / "cells"
    cells.mkdir(parents=True)
    (cells / "c0ffee.json").write_text(json.dumps({**cell(protection=7.5), "cell": "c0ffee"}))
    r = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "store"), "--out", str(tmp_path / "rep")])
    assert r.exit_code != 0 and "cell c0ffee (cells/c0ffee.json" in r.output and "[0, 1]" in r.output, r.output
    assert not (tmp_path / "rep").exists()
