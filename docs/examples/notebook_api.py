"""A notebook's use of the benchmark, as a script: a tiny real run with bench.api, then its rows as tables.

Runs in about a minute on 2 CPU cores (CI runs it: tests/test_api.py): 3 LFW people with >= 15 photos
(10 to craft each mask from, 5 protected test photos) against 60 distractor photos; no mask, random noise and
OPOM-ConvexHull (2 steps, far below the paper's, so the numbers are only a demonstration) crafted on
mobileface and measured on mobileface (white-box) and dlib-resnet (black-box), at two L2 budgets.

    python docs/examples/notebook_api.py [--work DIR]

In a notebook, the same calls: ``rows = api.run(...)``, then pandas.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import api

PEOPLE = ["Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi"]


def tiny_splits(folder: Path) -> Path:
    """Split files of the tiny slice: the PEOPLE's first 15 photos, and 2 photos of 30 other people as the
    gallery's distractors (a split is a CSV of file names: see docs/data.md)."""
    from bench.data import open_dataset
    from bench.data.splits import make_splits, write_splits

    records = open_dataset("lfw").scan().records
    chosen = [r for r in records if r.identity in PEOPLE and int(r.relpath[-8:-4]) <= 15]
    others = sorted({r.identity for r in records if r.identity not in PEOPLE and r.identity.startswith("Al")})[:30]
    chosen += [r for r in records if r.identity in others and int(r.relpath[-8:-4]) <= 2]
    write_splits(make_splits(chosen, [], seed=0), seed=0, aligner_version="example", folder=folder)
    return folder


def main(work: Path) -> None:
    splits = tiny_splits(work / "splits")
    rows = api.run(methods=["none", "noise", "opom-convex"], sources=["mobileface"], targets=["mobileface", "dlib-resnet"],
                   split="commons", split_folder=str(splits), budgets=[400, 1200],
                   params={"opom-convex": {"steps": 2, "warmup": 1}}, results=work / "results")
    print(f"{len(rows)} cells")
    table = rows.pivot_table(index=["method", "budget"], columns="target", values="top1_protection", aggfunc="mean")
    print("Top-1 protection (%):")
    print((100 * table).round(1).to_string())
    again = api.load(work / "results")  # the same rows, read back from the result store
    assert sorted(again["cell"]) == sorted(rows["cell"])
    print(f"mean SSIM at L2 1200: {rows[rows['budget'] == 1200]['ssim'].mean():.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the splits and results (default: a temporary one)")
    args = parser.parse_args()
    main(args.work or Path(tempfile.mkdtemp(prefix="bench-api-example-")))
