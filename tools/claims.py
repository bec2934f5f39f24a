"""Per split and source: every protection rate with its 95% interval over people, each method vs noise
(overall and per black-box target), the paper's orderings as paired intervals. Markdown on stdout.

    python tools/claims.py [--results results] [--budget 1200] [--n-inference 10]

A thin wrapper: the logic lives in bench/reporting/claims.py and bench/reporting/paper.py, and `bench report` writes the same
sections to reports/claims.md, reports/paper_vs_ours.md and the report page.
"""

from __future__ import annotations

import argparse

import pandas as pd

from bench.reporting.claims import claims_markdown, interval_markdown, interval_table, labelled, per_target_vs_noise
from bench.reporting.render import markdown_table
from bench.reporting.paper import CLAIMS
from bench.store import ResultStore
from bench.superseded import split_superseded


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=None)
    ap.add_argument("--budget", type=float, default=1200.0)
    ap.add_argument("--n-inference", type=int, default=10)
    args = ap.parse_args(argv)
    rows, _ = split_superseded(ResultStore(args.results).rows())  # as `bench report` does
    rows = pd.DataFrame(rows)
    if rows.empty:
        print("no result cells")
        return
    for split in sorted(set(rows["split"])):
        try:
            table, white, intervals = interval_table(rows, split, args.budget, args.n_inference)
        except ValueError as err:
            print(f"\n### {split}: {err}")
            continue
        print(f"\n### {split}\n\n{interval_markdown(table, white, intervals)}")
        df = labelled(rows, split, args.budget, args.n_inference)
        for source in sorted(s for s in set(df["source"]) if s != "-"):
            per_target = per_target_vs_noise(rows, split, source, args.budget, args.n_inference)
            if not per_target.empty:
                print(f"\n{split}, source {source}: minus noise on each black-box target (points) [95% paired CI]\n")
                print(markdown_table(per_target.rename_axis("method").reset_index()))
    print("\n### Claims\n")
    print(claims_markdown(rows, args.budget, args.n_inference, pairs=CLAIMS))


if __name__ == "__main__":
    main()
