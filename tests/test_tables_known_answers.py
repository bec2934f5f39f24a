"""Known answers for the report tables (bench/reporting/tables.py, bench/reporting/selection.py), each added for
a mutant that survived the fast table tests (tests/test_cli_edges.py -k synthetic_rows) in a mutation run over
the modules that compute the published numbers: Tables 1-3 recomputed by hand from the committed records (the
real cells of record) and compared with the table frames and the committed CSVs (their rounding included), and
hand-built tables (fixtures, named so) for what the records never show: an average that must leave out the
white-box target and a missing one, clean rates that agree only to the last bits, cells another split, budget,
protocol, transform or number of inference photos must not reach, rates on the edge of [0, 1], row labels of
variants, rows written by older code; and the side tables (seed spread, robustness, realistic delivery) on
hand-built cells. Error messages are pinned whole: they are the one line a user reads."""

from __future__ import annotations

import io
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.paths import repo_root
from bench.records import RecordStore
from bench.reporting.selection import CLEAN_ROW, Selection, row_labels
from bench.reporting.tables import efficiency_table, protection_table, realistic_table, robustness_table, seed_spread

RECORDS = repo_root() / "results" / "records"
REPORTS = repo_root() / "reports"
TABLE_OF_SPLIT = {"celebrities": 1, "commons": 2}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return RecordStore(RECORDS).rows()


def paper_cells(rows: list[dict], split: str) -> list[dict]:
    """The cells Tables 1-3 read, selected by hand: the split, L2 1,200, 10 inference photos (0 for methods
    that use none), probe-side identification on photos as saved."""
    return [r for r in rows if r["split"] == split and r["budget"] == 1200.0 and r["n_inference"] in (0, 10)
            and str(r["protocol"]).startswith("ident-") and not r["transforms"]]


def hand_table(cells: list[dict]) -> tuple[list[tuple], dict, dict]:
    """Tables 1-2 counted by hand: (row order, {(row, target, k): %}, {(row, target): white-box})."""
    by = defaultdict(list)
    for c in cells:
        by[(c["source"], c["method"]), c["target"]].append(c)
    targets = sorted({c["target"] for c in cells})
    rows = sorted({r for r, _ in by}, key=lambda r: (r[0] != "-", r[0], {"none": 0, "noise": 1}.get(r[1], 9), r[1]))
    values, white = {}, {}
    for k in (1, 5):
        for t in targets:
            values[CLEAN_ROW, t, k] = 100 * next(c[f"top{k}_clean_accuracy"] for c in cells if c["target"] == t)
        values[CLEAN_ROW, "Average", k] = sum(values[CLEAN_ROW, t, k] for t in targets) / len(targets)
        for row in rows:
            black = []
            for t in targets:
                seeds = by[row, t]
                values[row, t, k] = 100 * sum(c[f"top{k}_protection"] for c in seeds) / len(seeds)
                white[row, t] = seeds[0]["white_box"]
                if not white[row, t]:
                    black.append(values[row, t, k])
            values[row, "Average", k] = sum(black) / len(black)
    return [CLEAN_ROW] + rows, values, white


@pytest.mark.parametrize("split", ["celebrities", "commons"])
def test_tables_1_and_2_of_the_records_equal_a_hand_count_and_the_committed_csv(records, split):
    cells = paper_cells(records, split)
    order, values, white = hand_table(cells)
    table, white_frame = protection_table(records, split)
    targets = sorted({c["target"] for c in cells})
    assert list(table.index) == order, "one row per source and method, baselines first (none, noise), none dropped"
    assert list(table.columns) == [(t, f"Top-{k}") for t in targets + ["Average"] for k in (1, 5)]
    for (row, target, k), value in values.items():
        assert table.loc[row, (target, f"Top-{k}")] == pytest.approx(value, abs=1e-9), (row, target, k)
    for (row, target), is_white in white.items():
        assert bool(white_frame.loc[row, (target, "Top-1")]) is bool(is_white), (row, target)
    # each source is white-box against itself only, and its average is over the other two targets
    assert all(white[row, t] == (row[0] == t) for row, t in white)
    text = (REPORTS / f"table{TABLE_OF_SPLIT[split]}_{split}.csv").read_text()
    assert table.round(2).to_csv() == text, "the committed CSV is this table, as bench report writes it"
    committed = pd.read_csv(io.StringIO(text), header=[0, 1], index_col=[0, 1])
    assert list(committed.index.names) == ["source", "method"]
    assert [tuple(map(str, i)) for i in committed.index] == [tuple(map(str, i)) for i in order]
    for (row, target, k), value in values.items():
        shown = committed.loc[row, (target, f"Top-{k}")]
        assert shown == pytest.approx(np.round(value, 2), abs=1e-9), (row, target, k, "rounded to 2 places")


def test_table_3_of_the_records_equals_a_hand_count_and_the_committed_csv(records):
    cells = [c for c in paper_cells(records, "celebrities") if c["method"] != "none"]
    kinds = {"person": "person-specific", "image": "image-specific", "universal": "universal", "baseline": "baseline"}

    def mean(values):
        values = [v for v in values if v is not None and not math.isnan(v)]
        return sum(values) / len(values) if values else math.nan

    def summary(group):
        black = [c["top1_protection"] for c in group if not c["white_box"]]
        return (kinds[group[0]["kind"]], mean(c["t1"] for c in group), mean(c["t2"] for c in group),
                100 * sum(black) / len(black), mean(c["ssim"] for c in group))

    groups = defaultdict(list)  # a method configuration over all its sources (checkpoints are configurations)
    for c in cells:
        groups[c["method"], c["method_config"]].append(c)
    table = efficiency_table(records)
    assert len(table) == len(groups) and all(m.split(" [")[0] in {g[0] for g in groups} for m in table.index)
    shown = [tuple(r) for r in table.itertuples(index=False)]
    for group in groups.values():  # each configuration's numbers are one row of the table
        e = summary(group)
        match = [s for s in shown if s[0] == e[0] and s[1:] == pytest.approx(e[1:], abs=1e-9, nan_ok=True)]
        assert len(match) == 1, (group[0]["method"], e)
        shown.remove(match[0])
    assert table.round(4).to_csv() == (REPORTS / "table3_efficiency.csv").read_text()
    by_source = efficiency_table(records, by_source=True)
    per_source = defaultdict(list)
    for c in cells:
        per_source[c["source"], c["method"], c["method_config"]].append(c)
    assert len(by_source) == len(per_source)
    for (source, method, _), g in per_source.items():
        row = by_source.loc[source]
        row = row[[m.split(" [")[0] == method for m in row.index]]
        assert len(row) == 1 and tuple(row.iloc[0]) == pytest.approx(summary(g), abs=1e-9, nan_ok=True)
    assert by_source.round(4).to_csv() == (REPORTS / "table3_efficiency_by_source.csv").read_text()


# hand-built tables (fixtures) ------------------------------------------------------------------------

def fixture_cell(target="dlib-resnet", protection=0.5, source="mobileface", method="opom-center", **kw) -> dict:
    """One hand-built stored cell with the fields the tables read."""
    row = dict(split="celebrities", source=source, method=method, method_config="default", target=target,
               weights=f"w-{source}->w-{target}", budget=1200.0, seed=0, n_inference=10,
               protocol="ident-v1/distractors/k1,5/far0.001", transforms="", top1_protection=protection,
               top5_protection=protection / 2, top1_clean_accuracy=0.9, top5_clean_accuracy=0.95,
               white_box=target == source, kind="person", t1=1.0, t2=None, ssim=0.9,
               method_params={"method": method}, cell=f"{source}-{method}-{target}-{kw.get('seed', 0)}")
    row.update(kw)
    return row


def test_the_average_leaves_out_the_white_box_target_and_a_missing_cell_in_a_hand_built_table_fixture():
    rows = [fixture_cell("mobileface", 0.99), fixture_cell("dlib-resnet", 0.2), fixture_cell("hse-faceres", 0.4),
            fixture_cell("mobileface", 0.98, source="dlib-resnet"), fixture_cell("dlib-resnet", 0.9, source="dlib-resnet"),
            fixture_cell("hse-faceres", 0.1, top1_clean_accuracy=0.8, top5_clean_accuracy=0.85)]
    rows[-1]["cell"] += "-again"  # a second seed of mobileface -> hse-faceres: averaged with the first
    rows[-1]["seed"] = 1
    table, white = protection_table(rows[:5] + [{**rows[-1], "top1_clean_accuracy": 0.9, "top5_clean_accuracy": 0.95}],
                                    "celebrities")
    mf, dl = ("mobileface", "opom-center"), ("dlib-resnet", "opom-center")
    assert table.loc[mf, ("hse-faceres", "Top-1")] == pytest.approx(25.0) == 100 * (0.4 + 0.1) / 2
    assert table.loc[mf, ("hse-faceres", "Top-5")] == pytest.approx(12.5)
    assert table.loc[mf, ("Average", "Top-1")] == pytest.approx((20.0 + 25.0) / 2), "not with the white-box 99%"
    assert table.loc[mf, ("Average", "Top-5")] == pytest.approx((10.0 + 12.5) / 2)
    assert bool(white.loc[mf, ("mobileface", "Top-1")]) and bool(white.loc[mf, ("mobileface", "Top-5")])
    assert not white.loc[mf, ("dlib-resnet", "Top-1")] and not white.loc[mf, ("Average", "Top-1")]
    # dlib-resnet has no hse-faceres cell: its average is its one black-box target, the empty cell stays empty
    assert math.isnan(table.loc[dl, ("hse-faceres", "Top-1")]) and not white.loc[dl, ("hse-faceres", "Top-1")]
    assert table.loc[dl, ("Average", "Top-1")] == pytest.approx(98.0)
    assert table.loc[dl, ("Average", "Top-5")] == pytest.approx(49.0)
    # the clean row: each target's clean accuracy, averaged over every target (white-box ones included)
    assert table.loc[CLEAN_ROW, ("Average", "Top-1")] == pytest.approx(90.0)
    assert table.loc[CLEAN_ROW, ("hse-faceres", "Top-5")] == pytest.approx(95.0)
    # only white-box cells: no black-box average (not 0, not the white-box rate)
    only_white, _ = protection_table([fixture_cell("mobileface", 0.99)], "celebrities")
    assert math.isnan(only_white.loc[mf, ("Average", "Top-1")])
    # a chosen subset of targets: columns in that order, the average over those targets only
    some, _ = protection_table(rows[:5], "celebrities", targets=["hse-faceres", "mobileface"])
    assert [c for c, _ in some.columns[::2]] == ["hse-faceres", "mobileface", "Average"]
    assert some.loc[mf, ("Average", "Top-1")] == pytest.approx(40.0)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # a clean row without any rate: NaN, said so
def test_clean_rates_must_agree_to_twelve_places_in_a_hand_built_table_fixture():
    near = [fixture_cell(top1_clean_accuracy=0.9), fixture_cell(source="hse-faceres", top1_clean_accuracy=0.9 + 3e-13)]
    table, _ = protection_table(near, "celebrities")  # 0.9000000000003: the same rate at 12 places
    assert table.loc[CLEAN_ROW, ("dlib-resnet", "Top-1")] == pytest.approx(90.0)
    apart = [fixture_cell(top1_clean_accuracy=0.9), fixture_cell(source="hse-faceres", top1_clean_accuracy=0.9 + 1e-9)]
    with pytest.raises(BenchError) as err:
        protection_table(apart, "celebrities")
    assert str(err.value) == ("the cells for target 'dlib-resnet' disagree on its top1_clean_accuracy (0.9, 0.9): they "
                              "come from different protocols; report them from separate --results folders")
    unknown = [fixture_cell(top1_clean_accuracy=None), fixture_cell(source="hse-faceres", top1_clean_accuracy=0.8)]
    table, _ = protection_table(unknown, "celebrities")
    assert table.loc[CLEAN_ROW, ("dlib-resnet", "Top-1")] == pytest.approx(80.0), "a cell without it does not count"
    table, _ = protection_table([fixture_cell(top1_clean_accuracy=None)], "celebrities")
    assert math.isnan(table.loc[CLEAN_ROW, ("dlib-resnet", "Top-1")])


def test_rows_are_ordered_baselines_first_in_a_hand_built_table_fixture():
    rows = [fixture_cell(method=m, source=s, method_params={"method": m}, **({"n_inference": 0} if s == "-" else {}))
            for s, m in [("mobileface", "fi-uap"), ("-", "noise"), ("dlib-resnet", "opom-center"), ("-", "none"),
                         ("mobileface", "advcloak"), ("-", "gap")]]
    table, _ = protection_table(rows, "celebrities")
    assert list(table.index) == [CLEAN_ROW, ("-", "none"), ("-", "noise"), ("-", "gap"), ("dlib-resnet", "opom-center"),
                                 ("mobileface", "advcloak"), ("mobileface", "fi-uap")]
    assert table.index.names == ["source", "method"], "the CSV's header names them"
    # a baseline with two configurations keeps its place by method, its rows by label
    rows = [r for r in rows if r["method"] != "noise"] + [
        fixture_cell(method="noise", source="-", n_inference=0, method_config=f"sigma{v}", cell=f"sigma{v}",
                     method_params={"method": "noise", "sigma": v}) for v in (1, 9)]
    table, _ = protection_table(rows, "celebrities")
    assert [m for _, m in table.index][1:4] == ["none", "noise [sigma=1]", "noise [sigma=9]"]
    assert [m for _, m in table.index][4] == "gap"


def test_only_the_papers_cells_at_the_budget_reach_the_tables_in_a_hand_built_table_fixture():
    kept = [fixture_cell(protection=0.5), fixture_cell(protection=0.3, seed=1, budget=1200.0 + 1e-9, transforms=None),
            fixture_cell(protection=0.2, source="-", method="noise", n_inference=0)]  # noise uses no inference photos
    left = [fixture_cell(protection=0.9, split="commons"), fixture_cell(protection=0.9, budget=400.0),
            fixture_cell(protection=0.9, n_inference=3), fixture_cell(protection=0.9, transforms="jpeg:75"),
            fixture_cell(protection=0.9, protocol="gallery-side-v1")]
    table, _ = protection_table(kept + left, "celebrities")
    assert list(table.index) == [CLEAN_ROW, ("-", "noise"), ("mobileface", "opom-center")]
    assert table.loc[("mobileface", "opom-center"), ("dlib-resnet", "Top-1")] == pytest.approx(40.0), "two seeds"
    assert table.loc[("-", "noise"), ("dlib-resnet", "Top-1")] == pytest.approx(20.0)
    selection = Selection(kept + left)
    assert len(selection.cells("celebrities")) == 3
    assert len(selection.cells("celebrities", paper=False)) == 5, "other protocols and transforms: robustness table"
    assert Selection(kept + left, budget=400.0).cells("celebrities")["top1_protection"].tolist() == [0.9]
    assert Selection(kept + left, n_inference=3).cells("celebrities")["top1_protection"].tolist() == [0.2, 0.9]
    unstated = Selection([fixture_cell(protocol=None), fixture_cell(protocol="gallery-side-v1")]).cells("celebrities")
    assert len(unstated) == 1 and unstated["protocol"].tolist() == [""], "a cell without a protocol is the paper's"
    with pytest.raises(ValueError, match="no results for split 'pair' at budget 1200 with 10 inference images"):
        protection_table(kept, "pair")


def test_rates_on_the_edges_of_zero_one_are_kept_in_a_hand_built_table_fixture():
    edges = [fixture_cell(protection=0.0), fixture_cell(source="hse-faceres", protection=1.0, top1_clean_accuracy=0.9)]
    table, _ = protection_table(edges, "celebrities")
    assert table[("dlib-resnet", "Top-1")].tolist()[1:] == [100.0, 0.0]
    for bad in (1.0 + 1e-9, -1e-9):
        with pytest.raises(BenchError) as err:
            protection_table([fixture_cell(protection=bad, cell="c0ffee")], "celebrities")
        assert str(err.value) == (f"cell c0ffee (cells/c0ffee.json in the result store) has top1_protection = {bad:g}; "
                                  "rates are stored as fractions in [0, 1] (1 such cell(s))")
    nameless = pd.DataFrame([fixture_cell(top1_protection="high"), fixture_cell(top1_protection="low")]).drop(columns="cell")
    with pytest.raises(BenchError) as err:
        protection_table(nameless, "celebrities")
    assert str(err.value) == ("row 0 has top1_protection = 'high'; rates are stored as fractions in [0, 1] "
                              "(2 such cell(s))")


def test_table_3_averages_black_box_cells_and_known_times_in_a_hand_built_table_fixture():
    rows = [fixture_cell("mobileface", 0.99, ssim=0.5, t1=None), fixture_cell("dlib-resnet", 0.2, ssim=0.8, t1=2.0),
            fixture_cell("hse-faceres", 0.4, ssim=0.8, t1=4.0, source="dlib-resnet"),
            fixture_cell("dlib-resnet", 0.1, source="-", method="noise", kind="baseline", t1=None, t2=0.5,
                         n_inference=0, white_box=False),
            fixture_cell("dlib-resnet", 0.05, source="-", method="none", kind="baseline", t1=None, t2=None,
                         n_inference=0, white_box=False)]
    table = efficiency_table(rows)
    assert list(table.index) == ["noise", "opom-center"], "no row for the unmasked baseline"
    opom = table.loc["opom-center"]
    assert opom["avg Top-1 protection (%)"] == pytest.approx(30.0), "the two black-box cells, not the white-box one"
    assert opom["t1 (s/person)"] == pytest.approx(3.0) and math.isnan(opom["t2 (s/image)"])
    assert opom["SSIM"] == pytest.approx(0.7) and opom["mask type"] == "person-specific"
    noise = table.loc["noise"]
    assert math.isnan(noise["t1 (s/person)"]) and noise["t2 (s/image)"] == pytest.approx(0.5)
    assert noise["mask type"] == "baseline" and noise["avg Top-1 protection (%)"] == pytest.approx(10.0)
    by_source = efficiency_table(rows, by_source=True)
    assert list(by_source.index) == [("-", "noise"), ("dlib-resnet", "opom-center"), ("mobileface", "opom-center")]
    assert by_source.loc[("mobileface", "opom-center"), "avg Top-1 protection (%)"] == pytest.approx(20.0)
    assert by_source.loc[("dlib-resnet", "opom-center"), "t1 (s/person)"] == pytest.approx(4.0)
    kinds = {k: efficiency_table([fixture_cell(kind=k)]).loc["opom-center", "mask type"]
             for k in ("image", "universal", "external")}
    assert kinds == {"image": "image-specific", "universal": "universal", "external": "external tool (bench evaluate)"}


def test_row_labels_name_only_what_sets_a_variant_apart_in_a_hand_built_table_fixture():
    rows = [fixture_cell(method="fi-uap", method_params={"method": "fi-uap"}),  # a method with one variant first
            fixture_cell(), fixture_cell(method_config="three", n_inference=3),
            fixture_cell(method_config="w2", weights="w-mobileface-2->w-dlib-resnet", seed=1)]
    df = Selection(rows).rows
    df = df.assign(source_weights=df["weights"].str.split("->").str[0])
    labels = row_labels(df, ["source", "method"], ("method_config", "n_inference", "source_weights"))
    assert labels.tolist() == ["fi-uap", "opom-center [n_inference=10, source_weights=w-mobileface]",
                               "opom-center [n_inference=3, source_weights=w-mobileface]",
                               "opom-center [n_inference=10, source_weights=w-mobileface-2]"]
    # a parameter one variant lacks shows as '-'; a setting value up to 40 characters is shown whole, a longer
    # one (a checksum) by its first 12
    long40, long41 = "a" * 28 + "b" * 12, "c" * 12 + "d" * 29
    variants = [fixture_cell(method_config=c, method_params=p, cell=c) for c, p in
                [("x", {"method": "opom-center", "steps": 8}), ("y", {"method": "opom-center"}),
                 ("z", {"method": "opom-center", "steps": 8, "tag": long40}),
                 ("w", {"method": "opom-center", "steps": 8, "tag": long41})]]
    table, _ = protection_table(variants, "celebrities")
    assert [m for _, m in table.index][1:] == ["opom-center [steps=-, tag=-]", "opom-center [steps=8, tag=-]",
                                               f"opom-center [steps=8, tag={long40}]", f"opom-center [steps=8, tag={'c' * 12}]"]


def test_rows_written_by_older_code_get_every_setting_in_a_hand_built_table_fixture():
    old = pd.DataFrame([{k: v for k, v in fixture_cell(seed=s, protection=p).items()
                         if k not in ("weights", "method_config", "protocol", "transforms", "method_params")}
                        for s, p in ((0, 0.2), (1, 0.4))])
    table, _ = protection_table(old, "celebrities")
    assert table.loc[("mobileface", "opom-center"), ("dlib-resnet", "Top-1")] == pytest.approx(30.0), "two seeds, one row"
    cells = Selection(old).cells("celebrities")
    for column in ("source_weights", "target_weights", "method_config", "protocol", "transforms"):
        assert cells[column].tolist() == ["", ""], column
    assert cells["method_params"].tolist() == [{}, {}]
    unfilled = Selection([fixture_cell(method_config=None, weights="w-hse->w-dlib", cell="a"),
                          fixture_cell(method_config=None, weights="w-dlib", cell="b")]).cells("celebrities")
    assert unfilled["method_config"].tolist() == ["", ""]
    assert unfilled["source_weights"].tolist() == ["w-hse", "w-dlib"] and unfilled["target_weights"].tolist() == ["w-dlib"] * 2
    assert Selection([fixture_cell(), fixture_cell(split="commons")]).splits == {"celebrities", "commons"}


def test_two_weights_of_one_target_are_one_clear_error_in_a_hand_built_table_fixture():
    rows = [fixture_cell(), fixture_cell(seed=1, weights="w-mobileface->w-dlib-resnet-v2", cell="v2")]
    with pytest.raises(BenchError) as err:
        protection_table(rows, "celebrities")
    assert str(err.value) == ("target 'dlib-resnet' appears with 2 different weights in the selected cells (w-dlib-resnet, "
                              "w-dlib-resnet-v2); one column holds one model: delete the stale cells or report each from "
                              "its own --results folder")


# the side tables: seeds, robustness, realistic delivery ----------------------------------------------

def test_the_seed_spread_is_over_seeds_of_one_row_in_a_hand_built_table_fixture():
    rows = [fixture_cell(protection=p, seed=s, cell=f"s{s}") for s, p in ((0, 0.2), (1, 0.4), (2, 0.9))]
    rows += [fixture_cell("hse-faceres", 0.5), fixture_cell(method="fi-uap", method_params={"method": "fi-uap"})]
    rows += [fixture_cell(method="gap", protection=p, seed=s, cell=f"gap{s}", method_params={"method": "gap"})
             for s, p in ((0, 0.1), (1, 0.3))]  # two seeds are a spread too
    spread = seed_spread(rows, "celebrities")
    assert list(spread.index) == [("mobileface", "gap", "dlib-resnet"), ("mobileface", "opom-center", "dlib-resnet")], \
        "rows with one seed are left out"
    assert tuple(spread.iloc[0]) == pytest.approx((20.0, math.sqrt(200), 10.0, 30.0, 2))
    spread = spread.iloc[1:]
    assert list(spread.columns) == ["Top-1 mean (%)", "sd over seeds", "min", "max", "seeds"]
    row = spread.iloc[0]
    assert row["Top-1 mean (%)"] == pytest.approx(50.0) and row["sd over seeds"] == pytest.approx(math.sqrt(1300))
    assert (row["min"], row["max"], row["seeds"]) == pytest.approx((20.0, 90.0, 3))
    assert seed_spread(rows[2:5], "celebrities").empty


def test_the_robustness_table_puts_each_scorer_and_transform_side_by_side_in_a_hand_built_table_fixture():
    def cells(protocol, transforms, field, rates, **kw):
        return [fixture_cell(t, 0.0, protocol=protocol, transforms=transforms, cell=f"{protocol}{transforms}{t}{kw}",
                             **{field: r}, **kw) for t, r in zip(("dlib-resnet", "hse-faceres", "mobileface"), rates)]
    rows = (cells("ident-v1", "", "top1_protection", (0.6, 0.4, 0.99))
            + cells("ident-v1", "jpeg:75", "top1_protection", (0.3, 0.1, 0.99))
            + cells("adaptive-ridge-v1", "", "adaptive_top1_protection", (0.2, 0.4, 0.99))
            + cells("gallery-side-v1", "", "gallery_top1_protection", (0.8, None, 0.99))
            + cells("adaptive-head-v1", "", "head_top1_protection", (0.1, 0.1, 0.99))
            + cells("adaptive-finetune-v1", "", "finetune_top1_protection", (0.05, 0.15, 0.99))
            + cells("linkability-v1", "", "link_top1_protection", (0.7, 0.9, 0.99))
            + cells("custom-v1", "", "top1_protection", (0.5, 0.5, 0.5))  # a protocol without a headline: no column
            + cells("ident-v1", "", "top1_protection", (0.1, 0.3, 0.99), method_config="steps8",
                    method_params={"method": "opom-center", "steps": 8}))
    table = robustness_table(rows, "celebrities")
    assert list(table.columns) == ["probe-side", "adaptive attacker", "adaptive attacker (fine-tuned)",
                                   "adaptive attacker (metric head)", "gallery-side", "linkability", "probe-side, jpeg:75"]
    assert table.index.names == ["source", "method"]
    assert list(table.index) == [("mobileface", "opom-center [steps=-]"), ("mobileface", "opom-center [steps=8]")]
    default = table.loc[("mobileface", "opom-center [steps=-]")]
    assert tuple(default) == pytest.approx((50.0, 30.0, 10.0, 10.0, 80.0, 80.0, 20.0)), \
        "black-box means of each protocol's headline field, the white-box 99% left out"
    assert table.loc[("mobileface", "opom-center [steps=8]"), "probe-side"] == pytest.approx(20.0)
    for only in (cells("ident-v1", "", "top1_protection", (0.6, 0.4, 0.99)), rows[:3] + rows[-6:-3]):
        assert robustness_table(only, "celebrities").empty, "one column is no comparison"
    assert list(robustness_table(rows[:6], "celebrities").columns) == ["probe-side", "probe-side, jpeg:75"]
    assert robustness_table(rows, "commons").empty


def test_the_realistic_table_shows_crop_and_photo_level_side_by_side_in_a_hand_built_table_fixture():
    def cell(target, transforms, protection, **kw):
        return fixture_cell(target, protection, transforms=transforms, cell=f"{target}{transforms}{kw.get('seed')}", **kw)
    rows = [cell("dlib-resnet", "", 0.5, ssim=0.9), cell("mobileface", "", 0.99, ssim=0.9),
            cell("dlib-resnet", "realistic:png", 0.4, realistic_not_redetected=1, realistic_photos=10, ssim_photo=0.95),
            cell("dlib-resnet", "realistic:png", 0.2, realistic_not_redetected=3, realistic_photos=10, ssim_photo=0.97,
                 seed=1),
            cell("dlib-resnet", "realistic:jpeg75", 0.3, realistic_not_redetected=2, realistic_photos=10, ssim_photo=0.93),
            cell("dlib-resnet", "realistic:jpeg50", 0.1, realistic_not_redetected=4, realistic_photos=10, ssim_photo=0.9),
            cell("dlib-resnet", "realistic:png", 0.9, protocol="adaptive-ridge-v1", realistic_not_redetected=9,
                 realistic_photos=10, ssim_photo=0.1)]  # another scorer: not this table's
    table = realistic_table(rows, "celebrities")
    assert list(table.columns) == ["white-box", "crop Top-1", "crop SSIM"] + [
        f"{spec} {c}" for spec in ("realistic:png", "realistic:jpeg50", "realistic:jpeg75") for c in ("Top-1", "not re-detected", "photos", "SSIM photo")]
    assert table.index.names == ["source", "method", "target"]
    dlib = table.loc[("mobileface", "opom-center", "dlib-resnet")]
    assert not dlib["white-box"] and bool(table.loc[("mobileface", "opom-center", "mobileface"), "white-box"])
    assert (dlib["crop Top-1"], dlib["crop SSIM"]) == pytest.approx((50.0, 0.9))
    assert dlib["realistic:png Top-1"] == pytest.approx(30.0), "the mean over seeds"
    assert dlib["realistic:png not re-detected"] == 3 and dlib["realistic:png photos"] == 10, "the most of any seed"
    assert dlib["realistic:png SSIM photo"] == pytest.approx(0.96)
    assert (dlib["realistic:jpeg75 Top-1"], dlib["realistic:jpeg75 not re-detected"]) == pytest.approx((30.0, 2))
    assert realistic_table(rows[:2], "celebrities").empty


def test_figure_lines_run_along_budgets_and_photo_counts_of_one_setting_in_a_hand_built_table_fixture():
    rows = [fixture_cell(budget=b, n_inference=n, cell=f"{b:g}-{n}") for b in (400.0, 1200.0) for n in (3, 10)]
    rows += [fixture_cell(transforms=None, budget=800.0, cell="unset"), fixture_cell(transforms="jpeg:75", cell="jpeg"),
             fixture_cell(protocol="gallery-side-v1", cell="gallery"), fixture_cell(split="commons", cell="commons"),
             fixture_cell(method_config="s8", method_params={"method": "opom-center", "steps": 8}, cell="s8")]
    lines = Selection(rows).figure_cells("celebrities")
    assert sorted(lines["cell"]) == sorted(r["cell"] for r in rows if r["split"] == "celebrities")
    label = dict(zip(lines["cell"], lines["label"]))
    assert len({label[c] for c in ("400-3", "400-10", "1200-3", "1200-10", "unset")}) == 1, "one line"
    assert len({label[c] for c in ("400-3", "jpeg", "gallery", "s8")}) == 4, "transform, protocol, config: other lines"
    assert "transforms=jpeg:75" in label["jpeg"] and "protocol=gallery-side-v1" in label["gallery"]
    assert "steps=8" in label["s8"]
    transforms = dict(zip(lines["cell"], lines["transforms"]))
    assert transforms["unset"] == "" and transforms["jpeg"] == "jpeg:75"
    assert Selection(rows).figure_cells("pair").empty and "label" in Selection(rows).figure_cells("pair")
    with pytest.raises(BenchError, match="has top5_protection = 2"):
        Selection([fixture_cell(budget=400.0, top5_protection=2.0)]).figure_cells("celebrities")
