"""Per source and split: each method's black-box average Top-1 protection with a 95% interval over people,
its white-box Top-1 and SSIM, and paired intervals for the paper's orderings. Markdown on stdout.

    python tools/claims.py [--results results] [--budget 1200]

Reads the result store's cells (bench/uncertainty.py explains the intervals). Until the report does
this itself (issue: "the report a reader trusts"), this is how the README's claims are checked.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from bench.store import ResultStore
from bench.uncertainty import bootstrap_rate, paired_difference

ORDERINGS = [("advcloak", "advfaces-plus"), ("advfaces-plus", "gap"), ("advcloak", "opom-convex"),
             ("advcloak-convex", "opom-convex"), ("opom-convex", "fi-uap"), ("advcloak-convex", "advcloak"),
             ("advcloak-center", "advcloak"), ("advfaces-plus", "opom-convex"), ("gap", "noise")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=None)
    ap.add_argument("--budget", type=float, default=1200.0)
    args = ap.parse_args()
    rows = [r for r in ResultStore(args.results).rows() if abs(float(r["budget"]) - args.budget) < 1e-6 and r.get("per_identity_hits")]
    cells = defaultdict(dict)  # (split, source, method) -> target -> row; baselines (source "-") join every source
    for r in rows:
        cells[(r["split"], r["source"], r["method"])][r["target"]] = r
    for split in sorted({r["split"] for r in rows}):
        sources = sorted({r["source"] for r in rows if r["split"] == split and r["source"] != "-"})
        for source in sources:
            methods = sorted(m for (sp, so, m) in cells if sp == split and so in (source, "-"))
            own = next(m for m in methods if (split, source, m) in cells)
            black = sorted(t for t in cells[(split, source, own)] if not _white(cells, split, source, t))
            print(f"\n### {split}, source {source} (black-box targets: {', '.join(black)})\n")
            print("| method | black-box avg Top-1 [95% CI] | white-box Top-1 | SSIM |\n|---|---|---|---|")
            chosen = {}
            for m in methods:
                by_t = cells[(split, source if (split, source, m) in cells else "-", m)]
                if not all(t in by_t for t in black):
                    continue
                chosen[m] = [by_t[t] for t in black]
                rate = bootstrap_rate(chosen[m])
                wb = [r["top1_protection"] for t, r in by_t.items() if r["white_box"]]
                ssim = sum(r["ssim"] for r in by_t.values()) / len(by_t)
                white = f"{100 * wb[0]:.1f}" if wb else "-"
                print(f"| {m} | {rate.estimate:.1f} [{rate.low:.1f}, {rate.high:.1f}] | {white} | {ssim:.3f} |")
            print("\n| claim | difference of black-box avg Top-1 (points) [95% paired CI] | verdict |\n|---|---|---|")
            for a, b in ORDERINGS:
                if a in chosen and b in chosen:
                    d = paired_difference(chosen[a], chosen[b])
                    print(f"| {a} > {b} | {d} | {_verdict(d)} |")
            if "noise" in chosen:  # does every method beat noise on every black-box target?
                print("\n| method | " + " | ".join(f"- noise on {t}" for t in black) + " |\n|---|" + "---|" * len(black))
                for m in sorted(set(chosen) - {"noise", "none"}):
                    diffs = [paired_difference([chosen[m][i]], [chosen["noise"][i]]) for i in range(len(black))]
                    print(f"| {m} | " + " | ".join(f"{d} {_verdict(d)}" for d in diffs) + " |")


def _verdict(d) -> str:
    return "yes" if d.low > 0 else "no (reversed)" if d.high < 0 else "not resolved"


def _white(cells, split, source, target) -> bool:
    for (sp, so, m), by_t in cells.items():
        if sp == split and so == source and target in by_t:
            return bool(by_t[target]["white_box"])
    return False


if __name__ == "__main__":
    main()
