"""Results of record (bench/records.py) and the reports made from them (bench/reproduce.py), on the small
real run of tests/report_run.py: the records give back the store's rows exactly, a report from the records
equals the report from the store, `bench report --check` passes on fresh output and names the file when one
number is edited (also in a copy named by BENCH_REPORTS), and export refuses a cell from a -dirty commit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import BenchError
from bench.records import RecordStore, export
from bench.reproduce import RECORDS_COMMAND, ReportInput, as_repository, check, choose, generate
from bench.run_profile import models_in
from bench.store import ResultStore
from report_run import real_run

MARKED_README = """# a README

Intro.

<!-- bench:table headline -->
<!-- /bench:table -->

The end.
"""


def record_unit_costs(store_root: Path) -> None:
    """Fixture step: give the run's profiles the unit costs a run of >= 10 minutes records itself
    (bench/runner.py UNIT_COSTS_AFTER_S), from this short run's own embedding times, so that export
    does not spend a minute measuring them (its fallback for short runs)."""
    for path in sorted((store_root / "profiles").glob("run-*.json")):
        prof = json.loads(path.read_text())
        costs: dict = {"device": "test fixture", "cores": 2, "mtcnn_s_per_photo": 0.05}
        for st in prof["stages"]:
            kind, _, what = st["stage"].partition(":")
            if kind == "embed" and st["items"]:
                costs[what] = {"forward_s_per_image": st["seconds"] / st["items"]}
        for model in models_in([prof]):
            costs.setdefault(model, {"forward_s_per_image": 0.01})
        path.write_text(json.dumps({**prof, "unit_costs": costs}, indent=1))


def as_from_a_clean_checkout(store_root: Path) -> None:
    """Fixture step: the provenance a clean checkout writes (tests also run in checkouts being edited, whose
    cells say ``<commit>-dirty``)."""
    for path in sorted((store_root / "cells").glob("*.json")) + sorted((store_root / "profiles").glob("run-*.json")):
        item = json.loads(path.read_text())
        item["provenance"]["commit"] = item["provenance"]["commit"].removesuffix("-dirty")
        path.write_text(json.dumps(item, indent=1))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ResultStore:
    """A copy of the real run's store (cells, masks, profiles) as a clean checkout writes it, with recorded
    unit costs."""
    run = real_run()
    root = tmp_path_factory.mktemp("store") / "results"
    shutil.copytree(run.results, root)
    as_from_a_clean_checkout(root)
    record_unit_costs(root)
    return ResultStore(root)


@pytest.fixture(scope="module")
def records(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("records") / "records"
    export(store, out)
    return out


@pytest.fixture()
def splits(monkeypatch):
    monkeypatch.setenv("BENCH_SPLITS", str(real_run().splits))


def test_records_give_back_exactly_the_store_rows(store, records):
    rows, again = store.rows(), RecordStore(records).rows()
    assert len(rows) == 32 and again == rows
    assert [list(r) for r in again] == [list(r) for r in rows], "the fields come back in the store's order"
    pd.testing.assert_frame_equal(RecordStore(records).frame(), store.frame())
    assert RecordStore(records).profiles() == store.profiles()
    files = sorted(p.relative_to(records).as_posix() for p in RecordStore(records).files())
    assert files == ["commons/mobileface/advcloak-convex.json", "commons/mobileface/fi-uap.json",
                     "commons/mobileface/opom-convex.json", "commons/no-source/noise.json", "commons/no-source/none.json"]
    record = json.loads((records / "commons/mobileface/opom-convex.json").read_text())
    assert record["clean"] is True and record["cells"] == 8 and len(record["people"]) == 3
    assert {r["target"] for r in record["rows"]} == {"mobileface", "dlib-resnet"}
    # a second export of the same store rewrites nothing
    before = {p: p.read_bytes() for p in records.rglob("*.json")}
    done = export(store, records)
    assert done.cells == 32 and {p: p.read_bytes() for p in records.rglob("*.json")} == before


def test_export_refuses_a_cell_from_a_dirty_commit_and_names_it(store, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(store.root, root)
    first = sorted((root / "cells").glob("*.json"))[3]
    cell = json.loads(first.read_text())
    cell["provenance"]["commit"] += "-dirty"  # the cell as a run on an edited checkout writes it
    first.write_text(json.dumps(cell, indent=1))
    with pytest.raises(BenchError, match=rf"cell {first.stem} .*-dirty.* 1 of 32 cells .*--allow-dirty"):
        export(ResultStore(root), tmp_path / "records")
    assert not (tmp_path / "records").exists(), "nothing is written"
    r = CliRunner().invoke(main, ["records", "export", "--results", str(root), "--out", str(tmp_path / "records")])
    assert r.exit_code != 0 and f"cell {first.stem}" in r.output and "1 of 32 cells" in r.output, r.output
    r = CliRunner().invoke(main, ["records", "export", "--results", str(root), "--out", str(tmp_path / "records"),
                                  "--allow-dirty"])
    assert r.exit_code == 0 and "1 cells are from a -dirty or unknown commit" in r.output, r.output
    marked = [json.loads(p.read_text()) for p in RecordStore(tmp_path / "records").files()]
    assert sorted(m["clean"] for m in marked) == [False, True, True, True, True]


def text_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*"))
            if p.suffix in {".csv", ".tex", ".md", ".html", ".json"}}


def test_a_report_from_the_records_equals_the_report_from_the_store(store, records, tmp_path, splits):
    """Every text file alike; the page differs only in the lines naming its maker (the store's is dated) and
    where its numbers come from (the store, the committed records).
    The records hold no masks: the visual grids are left as the folder they are reported into has them."""
    as_repository(tmp_path)  # the store's report judges git-ignored figures as in the checkout's reports/, too
    from_store, from_records = tmp_path / "reports", tmp_path / "from-records"
    generate(choose("results", store.root), from_store, 1200.0, 10)
    shutil.copytree(from_store / "figures", from_records / "figures")
    source = choose("records", records=records)
    assert source.origin == "records" and "no-results" not in str(source.store.root)
    lines = []
    generate(ReportInput(**{**source.__dict__, "store": ResultStore(tmp_path / "no-masks")}), from_records, 1200.0, 10,
             log=lines.append)
    a, b = text_files(from_store), text_files(from_records)
    assert set(a) == set(b) and "profile.csv" in a and "figures/masks.json" in a and "table2_commons_ci.md" in a
    for name in a:
        if name.startswith("index."):
            maker = [line for line in b[name].splitlines() if "Made by" in line]
            assert f"Made by <code>{RECORDS_COMMAND}</code>, from 32" in maker[0] or \
                f"Made by `{RECORDS_COMMAND}`, from 32" in maker[0]
            assert "Numbers from 32 result cells of the committed records" in b[name]
            assert "Numbers from 32 result cells of the result store" in a[name]
            a[name], b[name] = ([line for line in t[name].splitlines() if "Made by" not in line
                                 and "Numbers from" not in line] for t in (a, b))
        assert a[name] == b[name], name
    page = (from_records / "index.md").read_text()
    assert "not shown here: `figures/masks-commons-mobileface.png`" in page, "git keeps the commons grids out"


@pytest.fixture()
def committed(records, tmp_path, splits):
    """A reports folder and a README as `bench report --from records` writes them (the committed state)."""
    reports, readme = tmp_path / "reports", tmp_path / "README.md"
    readme.write_text(MARKED_README)
    source = choose("records", records=records)
    generate(source, reports, 1200.0, 10, docs=[readme])
    return reports, readme


def test_check_passes_on_fresh_output_and_names_the_file_a_number_was_edited_in(records, committed, tmp_path):
    reports, readme = committed
    table = readme.read_text()
    assert "| opom-convex | mobileface |" in table and "[" in table.split("| opom-convex | mobileface |")[1].splitlines()[0]
    assert check(records, reports, docs=[readme]) == []
    csv = reports / "table2_commons.csv"
    text = csv.read_text()
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines) if line.startswith("mobileface,opom-convex,"))
    cells = lines[n].split(",")
    cells[2] = f"{float(cells[2]) + 1.0:.2f}"  # one number, edited by hand
    csv.write_text(text.replace(lines[n], ",".join(cells)))
    found = check(records, reports, docs=[readme])
    assert [(d.path, d.line) for d in found] == [(csv, n + 1)]
    assert "table2_commons.csv" in str(found[0]) and cells[2] in str(found[0])
    csv.write_text(text)
    readme.write_text(readme.read_text().replace("| opom-convex | mobileface | ", "| opom-convex | mobileface | 9"))
    assert [d.path for d in check(records, reports, docs=[readme])] == [readme]


def test_bench_report_check_on_a_copy_named_by_bench_reports(records, committed, tmp_path, monkeypatch):
    reports, readme = committed
    copy = tmp_path / "copy-of-reports"
    shutil.copytree(reports, copy)
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copyfile(readme, work / "README.md")
    monkeypatch.chdir(work)  # the documents checked are the working directory's README.md and docs/
    monkeypatch.setenv("BENCH_RECORDS", str(records))
    monkeypatch.setenv("BENCH_REPORTS", str(copy))
    r = CliRunner().invoke(main, ["report", "--check"])
    assert r.exit_code == 0 and "agree with the records" in r.output, r.output
    tex = copy / "table2_commons.tex"
    tex.write_text(tex.read_text().replace("100.0", "99.0", 1))
    r = CliRunner().invoke(main, ["report", "--check"])
    assert r.exit_code != 0 and f"{tex}:" in r.output and "1 file(s) differ" in r.output, r.output


def test_without_records_the_check_passes_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RECORDS", str(tmp_path / "none-here"))
    r = CliRunner().invoke(main, ["report", "--check"])
    assert r.exit_code == 0 and "no records in" in r.output and "nothing to check" in r.output, r.output


def test_bench_report_says_which_rows_it_used(records, tmp_path, monkeypatch, splits):
    monkeypatch.setenv("BENCH_RECORDS", str(records))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "empty-results"))
    r = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0 and f"report from records: {records} (32 cells)" in r.output, r.output
    assert (tmp_path / "out" / "table2_commons.csv").exists() and (tmp_path / "out" / "profile.csv").exists()
    r = CliRunner().invoke(main, ["report", "--from", "results", "--out", str(tmp_path / "out")])
    assert r.exit_code != 0 and "is empty" in r.output, r.output


def test_a_headline_with_top_keeps_the_best_rows_and_both_baselines(records):
    """`top=N` (the README's headline): the N best rows, best first, then none and noise; a bad N is one
    clear error naming the option."""
    from bench.reporting.doctables import fill
    from bench.reporting.selection import Selection

    selection = Selection(RecordStore(records).rows(), 1200.0, 10)
    full = fill("<!-- bench:table headline split=commons -->\n<!-- /bench:table -->", selection)
    top = fill("<!-- bench:table headline split=commons top=2 -->\n<!-- /bench:table -->", selection)
    body = [line for line in full.splitlines() if line.startswith("| ") and "method" not in line]
    kept = [line for line in top.splitlines() if line.startswith("| ") and "method" not in line]
    methods = [line.split("|")[1].strip() for line in kept]
    assert len(body) > 4 and kept[:2] == [r for r in body if r.split("|")[1].strip() not in ("none", "noise")][:2]
    assert sorted(methods[2:]) == ["noise", "none"] and len(kept) == 4
    assert "the 2 best rows and the baselines" in top
    with pytest.raises(BenchError, match="top= takes a positive whole number, got 'two'"):
        fill("<!-- bench:table headline top=two -->\n<!-- /bench:table -->", selection)
