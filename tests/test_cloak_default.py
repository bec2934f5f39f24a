"""``bench cloak``'s default method and source follow the records: the rule (full_photo_ranking) applied to the
committed records picks bench/cloak_defaults.py's pair; the rule itself on hand-built cells (fixtures)."""

from __future__ import annotations

import pytest

from bench.api import load
from bench.cloak_defaults import DEFAULT_METHOD, DEFAULT_SOURCE
from bench.paths import repo_root
from bench.reporting.attackers import full_photo_ranking
from bench.reporting.selection import Selection

PEOPLE = [f"p{i}" for i in range(4)]
TARGETS = ("dlib-resnet", "hse-faceres", "mobileface")


def test_the_default_method_and_source_are_the_records_best_through_the_full_photo():
    ranking = full_photo_ranking(Selection.of(load(repo_root() / "results" / "records")))
    assert not ranking.empty, "the committed records hold no full-photo cells: the rule has nothing to choose from"
    best = ranking.iloc[0]
    assert (DEFAULT_METHOD, DEFAULT_SOURCE) == (best["method"], best["source"]), (
        f"the records' best through the full photo is {best['method']} from {best['source']} "
        f"({best['rate']:.1f} [{best['low']:.1f}, {best['high']:.1f}]): set it in bench/cloak_defaults.py")


def fixture_cell(method, source, target, protected, transforms="realistic:png") -> dict:
    """A hand-built stored cell; ``protected``: photos (of 2) per person the target did not identify."""
    rate = sum(protected) / (2 * len(PEOPLE))
    return dict(split="celebrities", source=source, method=method, method_config="default", target=target,
                weights=f"w-{source}->w-{target}", budget=1200.0, seed=0, n_inference=10,
                protocol="ident-v1/distractors/k1,5/far0.001", transforms=transforms, top1_protection=rate,
                top5_protection=rate, top1_clean_accuracy=0.9, top5_clean_accuracy=0.95, white_box=target == source,
                kind="person", t1=1.0, t2=None, ssim=0.9, ssim_photo=0.98, identities=len(PEOPLE),
                per_identity_hits={p: {"1": 2 - n, "5": 2 - n} for p, n in zip(PEOPLE, protected)},
                per_identity_pairs={p: 2 for p in PEOPLE}, method_params={"method": method},
                cell=f"{source}-{method}-{target}-{transforms}")


def test_the_rule_ranks_full_photo_black_box_rates_and_leaves_out_baselines_and_partial_rows_in_a_hand_built_fixture():
    rows = []
    for method, source, rates in [("opom-convex", "mobileface", {"dlib-resnet": [2, 2, 1, 1], "hse-faceres": [1, 1, 1, 1]}),
                                  ("advcloak-eot", "dlib-resnet", {"hse-faceres": [2, 2, 2, 1], "mobileface": [2, 1, 1, 1]}),
                                  ("advcloak-convex", "hse-faceres", {"dlib-resnet": [2, 2, 2, 2]}),  # one target missing
                                  ("noise", "-", {t: [2, 2, 2, 2] for t in TARGETS})]:
        rows += [fixture_cell(method, source, t, p) for t, p in rates.items()]
        rows += [fixture_cell(method, source, source, [2, 2, 2, 2])] if source != "-" else []
    rows += [fixture_cell("advcloak-convex", "mobileface", t, [2, 2, 2, 2], transforms="") for t in TARGETS]  # crop only
    ranking = full_photo_ranking(Selection.of(rows))
    assert list(zip(ranking["method"], ranking["source"])) == [("advcloak-eot", "dlib-resnet"), ("opom-convex", "mobileface")]
    assert ranking["rate"].tolist() == pytest.approx([100 * (7 + 5) / 16, 100 * (6 + 4) / 16])
    assert ranking.loc[0, "black-box targets"] == "hse-faceres,mobileface"
