"""End-to-end runs on a small slice of real LFW with a real recognizer: resume, reports, CLI errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.splits import make_splits, write_splits
from bench.report import protection_table, write_reports
from bench.runner import RunConfig, Runner
from bench.store import ResultStore

TARGETS = ["mobileface", "dlib-resnet"]


@pytest.fixture(scope="module")
def mini_splits(tmp_path_factory, lfw):
    """Protocol splits over a slice of real LFW: 3 people x (10 inference + 5 test) + 60 distractors."""
    people = ["Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi"]
    records = lfw.scan().records
    usable = [r for r in records if r.identity in people and int(r.relpath[-8:-4]) <= 15]
    others = sorted({r.identity for r in records if r.identity not in people and r.identity.startswith("Al")})[:30]
    usable += [r for r in records if r.identity in others and int(r.relpath[-8:-4]) <= 2]
    folder = tmp_path_factory.mktemp("splits")
    write_splits(make_splits(usable, [], seed=0), seed=0, aligner_version="test", folder=folder)
    return folder


@pytest.fixture()
def env(mini_splits, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_SPLITS", str(mini_splits))
    return tmp_path


def config(**kw):
    base = dict(methods=["none", "noise", "fi-uap"], sources=["mobileface"], targets=TARGETS, split="commons",
                budgets=[1200.0], params={"fi-uap": {"steps": 2}})
    base.update(kw)
    return RunConfig(**base)


class InterruptingStore(ResultStore):
    """The real store, killed (KeyboardInterrupt) while writing its n-th cell, as Ctrl-C would."""

    def __init__(self, root, after: int):
        super().__init__(root)
        self.after, self.written = after, 0

    def put(self, key, row):
        if self.written == self.after:
            raise KeyboardInterrupt
        super().put(key, row)
        self.written += 1


def test_interrupted_run_resumes_to_the_same_table(env):
    reference = Runner(config(), ResultStore(env / "reference"), progress=False).run()
    assert len(reference) == 3 * len(TARGETS)
    with pytest.raises(KeyboardInterrupt):
        Runner(config(), InterruptingStore(env / "resumed", after=3), progress=False).run()
    assert len(ResultStore(env / "resumed").rows()) == 3  # whole cells only, nothing half-written
    resumed = Runner(config(), ResultStore(env / "resumed"), progress=False).run()
    assert len(resumed) == len(reference)
    cols = ["top1_protection", "top5_protection", "top1_clean_accuracy", "ssim", "l2_realised", "tpr_at_far"]
    a = pd.DataFrame(reference).sort_values("cell").set_index("cell")[cols]
    b = pd.DataFrame(resumed).sort_values("cell").set_index("cell")[cols]
    pd.testing.assert_frame_equal(a, b)
    again = Runner(config(), InterruptingStore(env / "resumed", after=0), progress=False).run()
    assert len(again) == len(reference), "a finished run writes nothing more"


def test_baselines_behave_and_report_is_well_formed(env):
    rows = Runner(config(), ResultStore(env / "store"), progress=False).run()
    df = pd.DataFrame(rows)
    none = df[df.method == "none"]
    # no mask: protection is exactly 1 - clean accuracy, and nothing changed in the photo
    assert np.allclose(none.top1_protection, 1 - none.top1_clean_accuracy)
    assert (none.l2_realised == 0).all() and (none.ssim == 1).all()
    noise = df[df.method == "noise"]
    assert np.allclose(noise.l2_nominal, 1200.0) and ((noise.l2_realised - 1200).abs() < 100).all()
    assert (df.pairs == 3 * 5 * 4).all()
    table, white = protection_table(df, "commons")
    assert white.loc[("mobileface", "fi-uap"), ("mobileface", "Top-1")]
    assert not white.loc[("mobileface", "fi-uap"), ("dlib-resnet", "Top-1")]
    paths = write_reports(rows, env / "reports")
    names = {p.name for p in paths}
    assert {"table2_commons.csv", "table2_commons.tex", "results-long.csv"} <= names
    csv = pd.read_csv(env / "reports" / "table2_commons.csv", header=[0, 1], index_col=[0, 1])
    assert csv.shape == (1 + 3, 2 * (len(TARGETS) + 1))
    check_latex_tabular((env / "reports" / "table2_commons.tex").read_text(), columns=2 + 2 * (len(TARGETS) + 1))


def test_intervals_over_people_from_real_cells(env):
    from bench.uncertainty import bootstrap_rate, paired_difference

    rows = Runner(config(), ResultStore(env / "store"), progress=False).run()
    cells = {(r["method"], r["target"]): r for r in rows}
    fi = [cells[("fi-uap", t)] for t in TARGETS]
    noise = [cells[("noise", t)] for t in TARGETS]
    rate = bootstrap_rate(fi, k=1)
    assert rate.estimate == pytest.approx(100 * np.mean([c["top1_protection"] for c in fi]))  # equal pairs per person
    assert rate.low <= rate.estimate <= rate.high
    same = paired_difference(fi, fi)
    assert (same.estimate, same.low, same.high) == (0, 0, 0) and not same.resolved
    gap = paired_difference(fi, noise)
    assert gap.estimate == pytest.approx(rate.estimate - bootstrap_rate(noise).estimate)
    assert gap.low <= gap.estimate <= gap.high


def check_latex_tabular(tex: str, columns: int) -> None:
    """A LaTeX-free parse: balanced environments and braces, every row with the declared column count."""
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert tex.count("{") == tex.count("}")
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", tex).group(1)
    assert len(spec.replace("|", "")) == columns
    body = tex.split(spec + "}", 1)[1].split(r"\end{tabular}")[0]
    for row in [r for r in body.split(r"\\") if r.strip() and r.strip() != r"\hline"]:
        row = row.replace(r"\hline", "")
        width = sum(int(m) for m in re.findall(r"\\multicolumn\{(\d+)\}", row))
        width += row.count("&") + 1 - len(re.findall(r"\\multicolumn", row))
        assert width == columns, f"row has {width} columns, expected {columns}: {row!r}"


def test_cli_errors_list_the_valid_names(env):
    cli = CliRunner()
    r = cli.invoke(main, ["run", "--methods", "opom-nope", "--split", "commons"])
    assert r.exit_code != 0 and "unknown method 'opom-nope'" in r.output and "opom-convex" in r.output
    r = cli.invoke(main, ["run", "--methods", "none", "--target", "arcface-x", "--split", "commons"])
    assert "unknown recognizer 'arcface-x'" in r.output and "dlib-resnet" in r.output
    r = cli.invoke(main, ["run", "--methods", "none", "--split", "nosuch"])
    assert "unknown split 'nosuch'" in r.output and "celebrities" in r.output
    r = cli.invoke(main, ["methods", "--json"])
    assert r.exit_code == 0 and {m["name"] for m in json.loads(r.output)} >= {"none", "noise", "opom-convex"}
