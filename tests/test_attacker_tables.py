"""The attacker and ablation tables (bench/reporting/attackers.py) and their bench:table blocks: rates and
intervals recounted by hand from per-person hits of hand-built cells (fixtures), a missing target shown as
'-', paired differences, and clear errors for unknown sources, methods and options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.reporting import doctables
from bench.reporting.attackers import SourceCells, ablation_frame, attacker_frame
from bench.reporting.selection import Selection
from bench.uncertainty import bootstrap_rate, paired_difference

TARGETS = ("dlib-resnet", "hse-faceres", "mobileface")
PEOPLE = [f"p{i}" for i in range(6)]


def fixture_cell(method, target, transforms, protected, source="mobileface", ssim=0.9) -> dict:
    """A hand-built stored cell: ``protected`` photos out of 4 per person that the target did not identify
    (the cell stores the identified ones: its hits)."""
    per_hits = {p: {"1": 4 - n, "5": 4 - n} for p, n in zip(PEOPLE, protected)}
    per_pairs = {p: 4 for p in PEOPLE}
    rate = sum(protected) / (4 * len(PEOPLE))
    return dict(split="celebrities", source=source, method=method, method_config="default", target=target,
                weights=f"w-{source}->w-{target}", budget=1200.0, seed=0, n_inference=10,
                protocol="ident-v1/distractors/k1,5/far0.001", transforms=transforms, top1_protection=rate,
                top5_protection=rate, top1_clean_accuracy=0.9, top5_clean_accuracy=0.95,
                white_box=target == source, kind="person" if source != "-" else "baseline", t1=1.0, t2=None,
                ssim=ssim, identities=len(PEOPLE), per_identity_hits=per_hits, per_identity_pairs=per_pairs,
                method_params={"method": method}, cell=f"{source}-{method}-{target}-{transforms}")


HITS = {  # (method, transforms) -> protected photos (of 4) per person on dlib-resnet, hse-faceres (black-box), mobileface (white-box)
    ("advcloak-convex", ""): ([2, 1, 0, 3, 4, 2], [1, 1, 1, 2, 0, 0], [4] * 6),
    ("advcloak-convex", "realistic:png"): ([1, 1, 0, 2, 3, 1], [0, 1, 0, 1, 0, 0], [3, 4, 2, 4, 4, 3]),
    ("advcloak-eot", ""): ([3, 2, 1, 3, 4, 2], [2, 1, 2, 2, 1, 0], [4] * 6),
    ("advcloak-eot", "realistic:png"): ([3, 2, 1, 2, 4, 2], [2, 1, 1, 2, 1, 0], [4, 4, 3, 4, 4, 4]),
    ("advcloak-eot", "blur:1"): ([2, 2, 1, 2, 3, 2], None, [4] * 6),  # no hse-faceres cell under blur:1
}


@pytest.fixture
def selection() -> Selection:
    rows = []
    for (method, transforms), per_target in HITS.items():
        rows += [fixture_cell(method, t, transforms, h) for t, h in zip(TARGETS, per_target) if h is not None]
    rows += [fixture_cell("noise", t, tr, [1, 0, 0, 1, 0, 0], source="-", ssim=0.85)
             for t in TARGETS for tr in ("", "realistic:png", "blur:1")]
    return Selection.of(rows)


def hand(method, transforms, targets=("dlib-resnet", "hse-faceres")) -> np.ndarray:
    """Per person, the mean over ``targets`` of the protected share: what the bootstrap resamples."""
    idx = [TARGETS.index(t) for t in targets]
    return np.mean([np.array(HITS[(method, transforms)][i]) / 4 for i in idx], axis=0)


def test_the_attacker_table_shows_black_box_rates_with_intervals_and_a_dash_for_a_missing_target_in_a_hand_built_fixture(selection):
    frame = attacker_frame(SourceCells(selection, "celebrities", "mobileface"), ["advcloak-convex", "advcloak-eot", "noise"])
    assert list(frame.columns) == ["method", "crop (as saved)", "full photo", "blur:1", "SSIM"]
    row = frame.set_index("method").loc["advcloak-eot"]
    assert row["crop (as saved)"].split()[0] == f"{100 * hand('advcloak-eot', '').mean():.1f}"
    assert row["full photo"].split()[0] == f"{100 * hand('advcloak-eot', 'realistic:png').mean():.1f}"
    assert row["blur:1"] == "-", "one black-box target missing: no average over fewer targets"
    assert frame.set_index("method").loc["advcloak-convex", "blur:1"] == "-", "never measured"
    assert frame.set_index("method").loc["noise", "SSIM"] == "0.850"
    # the interval is the bootstrap over people of the same cells
    cell = [c for c in selection.rows.to_dict("records")
            if c["method"] == "advcloak-convex" and c["transforms"] == "realistic:png" and c["target"] != "mobileface"]
    iv = bootstrap_rate(sorted(cell, key=lambda c: c["target"]), k=1)
    assert frame.set_index("method").loc["advcloak-convex", "full photo"] == f"{iv.estimate:.1f} [{iv.low:.1f}, {iv.high:.1f}]"


def test_the_ablation_table_pairs_the_full_photo_rates_with_the_reference_in_a_hand_built_fixture(selection):
    frame = ablation_frame(SourceCells(selection, "celebrities", "mobileface"), ["advcloak-eot"], "advcloak-convex").set_index("method")
    assert list(frame.index) == ["advcloak-convex", "advcloak-eot"], "the reference first"
    diff = frame.loc["advcloak-eot", "full photo vs advcloak-convex (points)"]
    expected = 100 * (hand("advcloak-eot", "realistic:png") - hand("advcloak-convex", "realistic:png")).mean()
    assert float(diff.split()[0]) == pytest.approx(expected, abs=0.05)
    records = [c for c in selection.rows.to_dict("records") if c["transforms"] == "realistic:png" and c["target"] != "mobileface"]
    mine = sorted((c for c in records if c["method"] == "advcloak-eot"), key=lambda c: c["target"])
    ref = sorted((c for c in records if c["method"] == "advcloak-convex"), key=lambda c: c["target"])
    assert diff == str(paired_difference(mine, ref, k=1))
    assert frame.loc["advcloak-convex", "full photo vs advcloak-convex (points)"] == "-"
    white = 100 * np.array(HITS[("advcloak-convex", "realistic:png")][2]).mean() / 4
    assert frame.loc["advcloak-convex", "white-box full photo"].split()[0] == f"{white:.1f}"
    assert frame.loc["advcloak-convex", "white-box crop"].startswith("100.0")


def test_doc_table_blocks_for_attackers_and_ablation_fill_and_refuse_bad_options_in_a_hand_built_fixture(selection):
    text = ("<!-- bench:table attackers source=mobileface methods=advcloak-eot,noise -->\nold\n<!-- /bench:table -->\n"
            "<!-- bench:table ablation source=mobileface methods=advcloak-eot -->\nold\n<!-- /bench:table -->\n")
    filled = doctables.fill(text, selection)
    assert "old" not in filled and "| advcloak-eot |" in filled and "full photo vs advcloak-convex" in filled
    assert "black-box targets: dlib-resnet, hse-faceres; white-box: mobileface" in filled
    assert doctables.fill(filled, selection) == filled, "filling again changes nothing"
    with pytest.raises(BenchError, match="needs source=NAME"):
        doctables.fill("<!-- bench:table attackers -->\n<!-- /bench:table -->", selection)
    with pytest.raises(BenchError, match="no cells of opom-convex from mobileface; measured: advcloak-convex"):
        doctables.fill("<!-- bench:table attackers source=mobileface methods=opom-convex -->\n<!-- /bench:table -->",
                       selection)
    with pytest.raises(BenchError, match="from source 'dlib-resnet'"):
        SourceCells(selection, "celebrities", "dlib-resnet")
    with pytest.raises(BenchError, match="unexpected keyword"):
        doctables.fill("<!-- bench:table ablation source=mobileface colour=red -->\n<!-- /bench:table -->", selection)
    assert isinstance(attacker_frame(SourceCells(selection, "celebrities", "mobileface")), pd.DataFrame)


def test_an_attacker_only_the_baselines_met_gets_no_column_in_a_hand_built_fixture(selection):
    extra = fixture_cell("noise", "dlib-resnet", "jpeg:75", [1, 0, 0, 1, 0, 0], source="-")
    rows = pd.concat([selection.rows, pd.DataFrame([extra])], ignore_index=True)
    frame = attacker_frame(SourceCells(Selection.of(rows), "celebrities", "mobileface"), ["advcloak-eot", "noise"])
    assert "jpeg:75" not in frame.columns and "blur:1" in frame.columns
