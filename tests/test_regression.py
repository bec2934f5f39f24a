"""The CI regression of protection rates (bench/regress.py): the small fixed benchmark must give the
committed baseline's rates within its tolerance, with no ordering of methods flipped."""

from __future__ import annotations

import copy

import pytest

from bench.regress import Baseline, RegressionConfig, compare, measure, orderings


@pytest.mark.slow
def test_protection_rates_match_the_committed_baseline(tmp_path):
    baseline = Baseline.load()
    cfg = RegressionConfig()
    assert baseline.config == {**cfg.__dict__, "methods": list(cfg.methods), "targets": list(cfg.targets)}, \
        "the regression's configuration changed: bless a new baseline with `bench regress --update --reason ...`"
    measured = measure(cfg, tmp_path)
    problems = compare(baseline.rates, measured, cfg.tolerance_points)
    assert not problems, "protection rates moved (bench regress shows the table):\n" + "\n".join(problems)


def test_the_check_names_a_moved_rate_and_a_flipped_ordering_on_shifted_baseline_rates():
    rates = Baseline.load().rates
    broken = copy.deepcopy(rates)
    broken["opom-convex|hse-faceres"]["top1"] -= 30  # a method losing 30 points on one target
    problems = compare(rates, broken, tolerance=2.0)
    assert any(p.startswith("opom-convex|hse-faceres top1") and "-30.0 points" in p for p in problems)
    # the committed baseline has opom-convex 10 points above noise on hse-faceres: losing 30 flips them by 20
    above = orderings(rates)["hse-faceres"]
    assert above.index("opom-convex") < above.index("noise"), "the committed baseline no longer has the ordering this check flips"
    assert any("ordering flipped" in p and "noise now above opom-convex by 20.0 points" in p for p in problems), problems
    assert not any("ordering flipped" in p for p in compare(rates, rates, tolerance=2.0))
    within = copy.deepcopy(rates)
    within["none|mobileface"]["top5"] += 1.5
    assert compare(rates, within, tolerance=2.0) == []
    del within["none|mobileface"]
    assert compare(rates, within, tolerance=2.0) == ["none|mobileface: in the baseline, not measured"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_blessing_a_baseline_needs_a_reason(reason, tmp_path):
    from bench.errors import BenchError
    from bench.regress import bless

    with pytest.raises(BenchError, match="--reason"):
        bless({}, RegressionConfig(), reason, tmp_path / "b.json")
