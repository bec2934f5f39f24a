"""Cells of a replaced generator checkpoint stay in the store but leave the report (bench/superseded.py).

The "earlier checkpoint" cells are fixtures: real cells of the small report run (tests/report_run.py, the
shipped mobileface AdvCloak-ConvexHull) with the checkpoint's sha256 and the method configuration changed,
as a store holds them after `bench train` replaced that checkpoint.
"""

from __future__ import annotations

import pandas as pd

from bench.reporting import write_reports
from bench.reporting.tables import protection_table
from bench.superseded import split_superseded
from report_run import real_run

CHECKPOINT = "mobileface/advcloak-convex"


def earlier_checkpoint_fixture_rows(rows: list[dict]) -> list[dict]:
    return [{**r, "method_config": "earlier-" + r["method_config"],
             "method_params": {**r["method_params"], "checkpoint_sha256": "0" * 64}}
            for r in rows if r["method"] == "advcloak-convex"]


def test_cells_of_a_replaced_checkpoint_leave_the_report_with_a_line_saying_so():
    rows = list(real_run().rows)
    stale = earlier_checkpoint_fixture_rows(rows)
    assert stale and all(r["method_params"]["checkpoint"] == CHECKPOINT for r in stale)

    kept, left_out = split_superseded(rows + stale)
    assert kept == rows  # every current cell, in order, and no other
    assert sum(left_out.values()) == len(stale) and {k[0] for k in left_out} == {CHECKPOINT}

    # without the filter the table would list the method twice, once labelled with the old sha256
    both, _ = protection_table(pd.DataFrame(rows + stale), "commons")
    table, _ = protection_table(pd.DataFrame(kept), "commons")
    assert sum("advcloak-convex" in m for _, m in both.index) == 2
    assert [m for _, m in table.index if "advcloak-convex" in m] == ["advcloak-convex"]

    logged = []
    assert write_reports(stale, log=logged.append) == []  # nothing current to report: nothing written
    assert len(logged) == 1 and CHECKPOINT in logged[0] and f"{len(stale)} cell(s)" in logged[0]


def test_without_a_card_to_compare_nothing_is_judged_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_GENERATORS", str(tmp_path))  # a generator folder without this checkpoint
    rows = list(real_run().rows)
    stale = earlier_checkpoint_fixture_rows(rows)
    kept, left_out = split_superseded(rows + stale)
    assert kept == rows + stale and not left_out
