"""The report's figures, intervals and claims, from a small real run (tests/report_run.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.budget import l2_255, realised_l2
from bench.reporting.claims import comparisons, interval_markdown, interval_table, pool, pooled_cells, labelled, rate_cells
from bench.reporting.figures import Figure, Skipped, curve, grid_columns, mask_grid, write_figures, _labelled, _black_box, _white_box
from bench.reporting.selection import CLEAN_ROW
from bench.reporting.tables import protection_table
from bench.store import ResultStore
from bench.uncertainty import bootstrap_rate, paired_difference
from report_run import BUDGETS, PEOPLE, SOURCE, real_run

COMMAND = "bench report --results TEST-STORE --out TEST-OUT"


@pytest.fixture(scope="module")
def run():
    return real_run()


@pytest.fixture()
def splits(run, monkeypatch):
    monkeypatch.setenv("BENCH_SPLITS", str(run.splits))
    return run.splits


@pytest.fixture(scope="module")
def figures(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_SPLITS", str(run.splits))
        made = write_figures(list(run.rows), out, store=ResultStore(run.results), command=COMMAND)
    return made


def test_every_figure_is_made_from_a_small_real_run_with_its_command(figures):
    made = {f.name: f for f in figures if isinstance(f, Figure)}
    skipped = [str(f) for f in figures if isinstance(f, Skipped)]
    assert set(made) == {"tradeoff-commons", "inference-commons", "targets-commons", f"masks-commons-{SOURCE}"}, skipped
    for f in made.values():
        png, pdf = f.files
        assert png.suffix == ".png" and pdf.suffix == ".pdf"
        with Image.open(png) as img:
            assert img.size[0] > 300 and img.size[1] > 200
            assert img.info["Software"] == COMMAND and COMMAND in img.info["Description"]
            assert f.caption in img.info["Description"]
            pixels = np.asarray(img.convert("L"))
            assert pixels.std() > 10, f"{png.name} looks blank"
        raw = pdf.read_bytes()
        assert raw.startswith(b"%PDF") and COMMAND.encode() in raw


def test_curves_are_the_black_box_means_of_the_rows(run):
    df = _labelled(pd.DataFrame(list(run.rows)), "commons")
    panel = _black_box(df)[SOURCE]
    assert set(panel["target"]) == {"dlib-resnet"}, "the white-box target stays out"
    c = curve(panel[panel["n_inference"].isin([10, 0])], "budget").set_index(["label", "budget"])
    for budget in BUDGETS:
        cells = [r for r in run.rows if r["method"] == "opom-convex" and r["budget"] == budget
                 and r["n_inference"] == 10 and not r["white_box"]]
        assert len(cells) == 1
        assert c.loc[("opom-convex", budget), "protection"] == pytest.approx(100 * np.mean([r["top1_protection"] for r in cells]))
        assert c.loc[("opom-convex", budget), "ssim"] == pytest.approx(np.mean([r["ssim"] for r in cells]))
    white = _white_box(df, SOURCE)  # the dotted lines: the source's masks on the source itself
    assert set(white["target"]) == {"mobileface"} and white["white_box"].all()
    w = curve(white[white["n_inference"] == 10], "budget").set_index(["label", "budget"])
    cell = next(r for r in run.rows if r["method"] == "opom-convex" and r["budget"] == 400.0 and r["n_inference"] == 10
                and r["white_box"])
    assert w.loc[("opom-convex", 400.0), "protection"] == pytest.approx(100 * cell["top1_protection"])
    assert _white_box(df, "-").empty, "baselines have no white-box target"
    by_n = curve(panel[panel["budget"] == 1200.0], "n_inference").set_index(["label", "n_inference"])
    three = [r["top1_protection"] for r in run.rows if r["method"] == "fi-uap" and r["budget"] == 1200.0
             and r["n_inference"] == 3 and not r["white_box"]]
    assert by_n.loc[("fi-uap", 3), "protection"] == pytest.approx(100 * np.mean(three))


def test_per_target_bars_carry_bootstrap_intervals_of_their_cells(run):
    data = rate_cells(pd.DataFrame(list(run.rows)), "commons", 1200.0, 10)
    assert set(data["target"]) == {"dlib-resnet"}
    assert {"none", "noise", "fi-uap", "opom-convex", "advcloak-convex"} == set(data["method"])
    for _, bar in data.iterrows():
        (cell,) = [r for r in run.rows if r["method"] == bar["method"] and r["target"] == bar["target"]
                   and r["budget"] == 1200.0 and r["n_inference"] in (0, 10)]
        iv = bootstrap_rate([cell])
        assert bar["rate"] == pytest.approx(100 * cell["top1_protection"])
        assert (bar["low"], bar["high"]) == (pytest.approx(iv.low), pytest.approx(iv.high))
        assert bar["low"] <= bar["rate"] <= bar["high"]


def test_figures_without_their_rows_are_skipped_with_a_reason(run, tmp_path, splits):
    one_setting = [r for r in run.rows if r["budget"] == 1200.0 and r["n_inference"] in (0, 10)]
    made = write_figures(one_setting, tmp_path, store=ResultStore(tmp_path / "empty-store"), command=COMMAND)
    reasons = {f.name: f.reason for f in made if isinstance(f, Skipped)}
    assert "--budget 400,800,1200,1600,2000" in reasons["tradeoff-commons"]
    assert "--n-inference 1,3,5,10" in reasons["inference-commons"]
    assert "no stored masks" in reasons["masks-commons"]
    assert [f.name for f in made if isinstance(f, Figure)] == ["targets-commons"]
    assert not (tmp_path / "tradeoff-commons.png").exists()
    at_2000 = write_figures(one_setting, tmp_path / "b", budget=2000.0, command=COMMAND)
    assert "no black-box cells" in {f.name: f.reason for f in at_2000 if isinstance(f, Skipped)}["targets-commons"]


def test_visual_grid_shows_the_stored_masks_at_the_budget(run, splits, tmp_path):
    store = ResultStore(run.results)
    grid = grid_columns(store, "commons", budget=1200.0, rows=pd.DataFrame(list(run.rows)))
    assert not isinstance(grid, Skipped), grid
    assert grid.people == sorted(PEOPLE)[:2]
    columns = dict(grid.by_source[SOURCE])
    assert set(columns) == {"noise", "fi-uap", "opom-convex", "advcloak-convex"}, "every stored method but none"
    stored, _ = store.load_masks(grid.sets[(SOURCE, "opom-convex")]["key"])
    assert grid.sets[(SOURCE, "opom-convex")]["key"]["n_inference"] == 10, "the report's setting is preferred"
    for person, clean, mask, protected in columns["opom-convex"]:
        assert float(l2_255(torch.from_numpy(mask).permute(2, 0, 1))) == pytest.approx(1200.0, rel=1e-4)
        original = stored[person].permute(1, 2, 0).numpy()
        cosine = (original * mask).sum() / np.linalg.norm(original) / np.linalg.norm(mask)
        assert cosine == pytest.approx(1.0, abs=1e-5), "the panel is the stored mask, rescaled"
        assert 1100 < realised_l2(clean[None], protected[None])[0] < 1250  # after clipping and uint8
    assert mask_grid(store, "commons", methods=["gap"], out=tmp_path)[0].reason.startswith("no stored masks")


def test_markdown_rates_carry_their_intervals(run):
    rows = pd.DataFrame(list(run.rows))
    table, white, intervals = interval_table(rows, "commons")
    # every value from the run's own rows, not from the table function the interval table calls: each
    # (source, method) at L2 1,200 with 10 inference photos (0: methods that use none), one seed here
    cells = rows[(rows["split"] == "commons") & np.isclose(rows["budget"], 1200.0) & rows["n_inference"].isin([10, 0])]
    assert sorted(table.index[1:]) == sorted(set(zip(cells["source"], cells["method"])))
    for r in cells.to_dict("records"):
        for k in (1, 5):
            col = (r["target"], f"Top-{k}")
            assert table.loc[(r["source"], r["method"]), col] == pytest.approx(100 * r[f"top{k}_protection"]), (r["cell"], k)
            assert table.loc[CLEAN_ROW, col] == pytest.approx(100 * r[f"top{k}_clean_accuracy"])
            assert bool(white.loc[(r["source"], r["method"]), col]) == bool(r["white_box"])
            # the interval is the people-bootstrap (pinned by tests/test_uncertainty.py) of this very cell
            assert intervals[((r["source"], r["method"]), col)] == bootstrap_rate([r], k=k)
        black = cells[(cells["source"] == r["source"]) & (cells["method"] == r["method"]) & ~cells["white_box"].astype(bool)]
        assert table.loc[(r["source"], r["method"]), ("Average", "Top-1")] == pytest.approx(100 * black["top1_protection"].mean())
    assert table.loc[CLEAN_ROW].notna().all()
    for idx in table.index[1:]:
        for col in table.columns:
            iv = intervals[(idx, col)]  # every rate has one: these rows have per-identity counts
            assert iv.estimate == pytest.approx(table.loc[idx, col])  # equal pairs per person
            assert iv.low <= table.loc[idx, col] <= iv.high
    text = interval_markdown(table, white, intervals)
    opom = next(line for line in text.splitlines() if "| opom-convex |" in line)
    iv = intervals[((SOURCE, "opom-convex"), ("Average", "Top-1"))]
    assert f"{table.loc[(SOURCE, 'opom-convex'), ('Average', 'Top-1')]:.1f} [{iv.low:.1f}, {iv.high:.1f}]" in opom
    assert opom.count("*") == 2, "the white-box Top-1/Top-5 cells are marked"


def test_claims_are_paired_bootstraps_that_say_not_resolved_when_zero_is_inside(run):
    rows = pd.DataFrame(list(run.rows))
    found = comparisons(rows)
    pairs = {(c.a, c.b) for c in found}
    assert pairs == {("fi-uap", "noise"), ("opom-convex", "noise"), ("advcloak-convex", "noise"),
                     ("advcloak-convex", "opom-convex")}
    cells = pooled_cells(labelled(rows, "commons", 1200.0, 10))
    for c in found:
        assert c.targets == ("dlib-resnet",)
        source_a = SOURCE if c.a != "noise" else "-"
        source_b = SOURCE if c.b != "noise" else "-"
        expected = paired_difference([cells[(source_a, c.a, t)] for t in c.targets],
                                     [cells[(source_b, c.b, t)] for t in c.targets])
        assert (c.interval.estimate, c.interval.low, c.interval.high) == (expected.estimate, expected.low, expected.high)
        covers = c.interval.low <= 0 <= c.interval.high
        assert ("not resolved" in c.sentence()) == covers
        if not covers:
            winner = c.a if c.interval.estimate > 0 else c.b
            assert c.sentence().startswith(f"{winner} beats ")


def test_pooling_seeds_keeps_a_single_seed_rate(run):
    cell = next(r for r in run.rows if r["method"] == "opom-convex" and r["target"] == "dlib-resnet")
    twice = pool([cell, cell])
    assert bootstrap_rate([twice]).estimate == pytest.approx(bootstrap_rate([cell]).estimate)
    assert pool([{k: v for k, v in cell.items() if k != "per_identity_hits"}]) is None


def test_bench_grid_draws_the_stored_masks(run, splits, tmp_path):
    """`bench grid` (once tools/mask_grid.py) draws a run's stored masks; the claims it also printed are
    `bench report`'s reports/claims.md (tools/claims.py, its copy, is gone)."""
    from click.testing import CliRunner

    from bench.cli import main

    result = CliRunner().invoke(main, ["grid", "--results", str(run.results), "--split", "commons", "--methods",
                                       "noise,opom-convex", "--out", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "grid.png") as img:
        assert "bench grid" in img.info["Software"]
    assert (tmp_path / "grid.pdf").exists()


def test_a_report_at_a_budget_the_store_lacks_is_one_clear_error(run, tmp_path):
    """`bench report --budget 777` on a store measured at 400 and 1,200: one line naming what the store has, and
    nothing written (it was a raw ValueError from deep in the tables)."""
    from bench.errors import BenchError
    from bench.reporting import write_reports

    with pytest.raises(BenchError, match=r"no cells at L2 777 .*budgets 400, 1200"):
        write_reports(run.rows, tmp_path / "out", budget=777.0)
    assert not (tmp_path / "out").exists()
