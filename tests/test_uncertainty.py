"""Known answers for the intervals behind every published rate and claim (bench/uncertainty.py).

The cells are built by hand (a fixture standing in for result cells: only the per-person counts the
statistics read), so each expected interval is worked out here from first principles, not from the
bootstrap the code uses: a zero-width interval where every person has the same rate, the exact bootstrap
distribution of a three-person table, and the normal-theory width of a 40-person one. An interval made
wider or narrower than the resampling of people gives, or one that resamples the wrong unit, fails them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.errors import BenchError
from bench.uncertainty import Interval, bootstrap_rate, paired_difference


def handmade_cell(protection: dict[str, float], pairs: int = 20, target: str = "t", protection5=None) -> dict:
    """A result cell's per-person counts for the given per-person Top-1 (and Top-5) protection."""
    protection5 = protection5 or {p: 1.0 for p in protection}
    return {"cell": f"handmade-{target}", "target": target,
            "per_identity_pairs": {p: pairs for p in protection},
            "per_identity_hits": {p: {"1": round(pairs * (1 - protection[p])), "5": round(pairs * (1 - protection5[p]))}
                                  for p in protection}}


def exact_bootstrap_quantile(per_person: list[float], q: float) -> float:
    """The q-quantile of the mean of |people| draws with replacement, from the full enumeration of resamples."""
    means = sorted(np.mean(draw) for draw in itertools.product(per_person, repeat=len(per_person)))
    return float(np.quantile(means, q))


def test_every_person_at_the_same_rate_gives_a_zero_width_interval():
    cell = handmade_cell({f"p{i}": 0.25 for i in range(10)})
    iv = bootstrap_rate([cell])
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((25.0, 25.0, 25.0), abs=1e-9)
    # a gap that is the same for every person is known exactly, however much the people differ
    a = handmade_cell({f"p{i}": i / 10 + 0.05 for i in range(10)})
    b = handmade_cell({f"p{i}": i / 10 for i in range(10)})
    diff = paired_difference([a], [b])
    assert (diff.estimate, diff.low, diff.high) == pytest.approx((5.0, 5.0, 5.0), abs=1e-9)
    assert diff.resolved


def test_a_three_person_table_gives_the_enumerated_bootstrap_quantiles():
    """People at 0%, 50% and 100%: of the 27 equally likely resamples, the mean's 25% and 75% points are
    1/3 and 2/3 (sums 2 and 4 of 6 half-steps; cumulative 10/27 = 0.37 and 23/27 = 0.85)."""
    per_person = [0.0, 0.5, 1.0]
    assert exact_bootstrap_quantile(per_person, 0.25) == pytest.approx(1 / 3)
    assert exact_bootstrap_quantile(per_person, 0.75) == pytest.approx(2 / 3)
    cell = handmade_cell(dict(zip(["a", "b", "c"], per_person)))
    iv = bootstrap_rate([cell], level=0.5, n=20000)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((50.0, 100 / 3, 200 / 3), abs=1e-6)
    # 90%: the 5% and 95% points fall in the sums-1 and sums-5 blocks (cumulative 1/27 .. 4/27 and 23/27 .. 26/27)
    assert (bootstrap_rate([cell], level=0.9, n=20000).low, bootstrap_rate([cell], level=0.9, n=20000).high) == \
        pytest.approx((100 / 6, 500 / 6), abs=1e-6)
    # the same table as a paired difference against a method that protects nobody
    zero = handmade_cell(dict.fromkeys("abc", 0.0))
    diff = paired_difference([cell], [zero], level=0.5, n=20000)
    assert (diff.estimate, diff.low, diff.high) == pytest.approx((50.0, 100 / 3, 200 / 3), abs=1e-6)
    diff90 = paired_difference([cell], [zero], level=0.9, n=20000)
    assert (diff90.low, diff90.high) == pytest.approx((100 / 6, 500 / 6), abs=1e-6)


def test_the_published_intervals_use_2000_resamples_seed_0_and_95_percent():
    """The report and the README's claims call these with their defaults: a changed default moves every
    published bound, so the defaults are pinned against explicit arguments."""
    a = handmade_cell({f"p{i:02d}": (i % 7) / 7 for i in range(30)})
    b = handmade_cell({f"p{i:02d}": (i % 5) / 5 for i in range(30)})
    assert bootstrap_rate([a]) == bootstrap_rate([a], k=1, n=2000, seed=0, level=0.95)
    assert paired_difference([a], [b]) == paired_difference([a], [b], k=1, n=2000, seed=0, level=0.95)


def test_the_95_percent_interval_of_40_people_has_the_normal_theory_width():
    """The percentile bootstrap of a mean over N people is close to mean +- 1.96 sd / sqrt(N) (sd with
    ddof 0, the resampling's own spread): 10% either way, far tighter than any scaling mistake."""
    rng = np.random.default_rng(7)
    rates = np.round(rng.beta(2, 3, size=40) * 20) / 20
    cell = handmade_cell({f"p{i:02d}": float(r) for i, r in enumerate(rates)})
    iv = bootstrap_rate([cell], n=4000)
    half = 100 * 1.96 * rates.std() / np.sqrt(len(rates))
    assert iv.estimate == pytest.approx(100 * rates.mean())
    assert iv.high - iv.low == pytest.approx(2 * half, rel=0.1)
    assert iv.low < iv.estimate < iv.high
    assert (iv.estimate - iv.low) == pytest.approx(half, rel=0.2) and (iv.high - iv.estimate) == pytest.approx(half, rel=0.2)
    assert bootstrap_rate([cell], n=4000, level=0.5).high - bootstrap_rate([cell], n=4000, level=0.5).low == \
        pytest.approx(2 * 0.674 * half / 1.96, rel=0.15), "the level is honoured"


def test_a_paired_difference_resamples_the_same_people_for_both_methods():
    """Two methods whose per-person rates vary a lot but move together: the paired interval is the width
    of the differences (normal theory), far narrower than two independent intervals would give."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.1, 0.8, size=40)
    gap = 0.1 + 0.05 * rng.standard_normal(40)
    a = handmade_cell({f"p{i:02d}": float(r) for i, r in enumerate(np.clip(base + gap, 0, 1))}, pairs=1000)
    b = handmade_cell({f"p{i:02d}": float(r) for i, r in enumerate(base)}, pairs=1000)
    per_a = np.array([1 - a["per_identity_hits"][p]["1"] / 1000 for p in sorted(a["per_identity_pairs"])])
    per_b = np.array([1 - b["per_identity_hits"][p]["1"] / 1000 for p in sorted(b["per_identity_pairs"])])
    d = per_a - per_b
    iv = paired_difference([a], [b], n=4000)
    assert iv.estimate == pytest.approx(100 * d.mean())
    assert iv.high - iv.low == pytest.approx(2 * 100 * 1.96 * d.std() / np.sqrt(40), rel=0.1)
    assert iv.resolved and iv.low > 0
    unpaired = 2 * 100 * 1.96 * np.sqrt(per_a.var() + per_b.var()) / np.sqrt(40)
    assert iv.high - iv.low < unpaired / 3


def test_rates_average_targets_per_person_and_read_the_asked_rank():
    one = handmade_cell({"a": 0.0, "b": 1.0}, target="x", protection5={"a": 0.0, "b": 0.5})
    two = handmade_cell({"a": 1.0, "b": 1.0}, target="y", protection5={"a": 0.5, "b": 0.5})
    both = bootstrap_rate([one, two], level=0.2, n=20000)
    # per person over targets: a 50%, b 100% (Top-1); resamples of 2 people: means 50 (1/4), 75 (1/2), 100 (1/4),
    # so the 40% and 60% points are both 75
    assert (both.estimate, both.low, both.high) == pytest.approx((75.0, 75.0, 75.0), abs=1e-6)
    top5 = bootstrap_rate([one, two], k=5, level=0.9, n=20000)
    # Top-5: a 25%, b 50%; resample means 25 (1/4), 37.5 (1/2), 50 (1/4): 5% and 95% points 25 and 50
    assert (top5.estimate, top5.low, top5.high) == pytest.approx((37.5, 25.0, 50.0), abs=1e-6)


def test_seeded_and_refusing_cells_it_cannot_compare():
    cell = handmade_cell({f"p{i}": i / 8 for i in range(8)})
    assert bootstrap_rate([cell], seed=0) == bootstrap_rate([cell], seed=0)
    assert bootstrap_rate([cell], seed=0) != bootstrap_rate([cell], seed=1)
    with pytest.raises(BenchError, match="no per-identity counts.*re-run"):
        bootstrap_rate([{"cell": "old", "target": "t", "per_identity_pairs": {"a": 2}}])  # no hits per person
    with pytest.raises(BenchError, match="do not cover the same people"):
        bootstrap_rate([cell, handmade_cell({"someone-else": 0.5})])
    with pytest.raises(BenchError, match="do not cover the same people"):
        bootstrap_rate([{"cell": "older", "target": "t"}])
    with pytest.raises(BenchError, match="same targets in the same order"):
        paired_difference([handmade_cell({"a": 0.5}, target="x"), handmade_cell({"a": 0.5}, target="y")],
                          [handmade_cell({"a": 0.5}, target="y"), handmade_cell({"a": 0.5}, target="x")])


@pytest.mark.parametrize(("iv", "resolved"), [((1.0, 0.0, 2.0), False), ((1.0, 0.1, 2.0), True), ((-1.0, -2.0, -0.1), True),
                                              ((-1.0, -2.0, 0.0), False), ((0.0, -1.0, 1.0), False)])
def test_a_difference_is_resolved_only_when_its_interval_leaves_out_zero(iv, resolved):
    assert Interval(*iv).resolved is resolved
    assert str(Interval(*iv)) == f"{iv[0]:+.1f} [{iv[1]:+.1f}, {iv[2]:+.1f}]"
