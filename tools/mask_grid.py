"""A visual grid per method: clean photo, mask (amplified), protected photo at L2 1,200, for a few people.

    # from the masks a run stored (what `bench report` shows as reports/figures/masks-<split>-<source>.png):
    python tools/mask_grid.py --results results --split celebrities --source mobileface --out reports/figures/grid.png
    # crafting the masks here, with each method's default parameters (no run needed):
    python tools/mask_grid.py --source mobileface --methods opom-convex,advfaces-plus,advcloak-convex,gap \
        --out reports/figures/masks-mobileface.png

A thin wrapper: the drawing (and reading stored masks) lives in bench/reporting/figures.py.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="mobileface")
    ap.add_argument("--methods", default="opom-convex,advfaces-plus,advcloak-convex,gap")
    ap.add_argument("--split", default="celebrities")
    ap.add_argument("--people", type=int, default=2)
    ap.add_argument("--budget", type=float, default=1200.0)
    ap.add_argument("--results", default=None, help="Show the masks stored in this result store instead of crafting.")
    ap.add_argument("--out", type=Path, default=Path("reports/figures/masks.png"))
    args = ap.parse_args(argv)
    command = shlex.join(["python", "tools/mask_grid.py", *(sys.argv[1:] if argv is None else argv)])
    from bench.reporting.figures import Skipped, draw_mask_grid, grid_columns, save

    methods = args.methods.split(",")
    if args.results:
        from bench.store import ResultStore

        grid = grid_columns(ResultStore(args.results), args.split, methods, args.source, args.people, args.budget)
        if isinstance(grid, Skipped):
            raise SystemExit(str(grid))
        columns = grid.by_source.get(args.source) or next(iter(grid.by_source.values()))
    else:
        columns = crafted_columns(args.split, args.source, methods, args.people, args.budget)
    fig = draw_mask_grid(columns, f"masks from {args.source} ({args.split} test photos)", args.budget)
    caption = f"{args.split}: clean / mask (amplified) / protected at L2 {args.budget:g}, masks from {args.source}."
    made = save(fig, args.out.parent, args.out.stem, caption, command)
    print(made.png)


def crafted_columns(split_name: str, source: str, methods: list[str], people: int, budget: float):
    """Craft each method's mask for the first ``people`` identities (default parameters, seed 0)."""
    import torch

    from bench.budget import protect, scale_to_budget
    from bench.data import open_dataset, prepare
    from bench.data.splits import load_split
    from bench.zoo import create_recognizer, to_canonical
    from methods import create_method

    split = load_split(split_name)
    chosen = split.identities()[:people]
    files = [f for p in chosen for f in split.files(p, "inference") + split.files(p, "test")[:1]]
    faces = prepare(open_dataset(split.dataset), only=sorted(files), progress=False)
    model = create_recognizer(source)
    columns = []
    for name in methods:
        method = create_method(name)
        panels = []
        for person in chosen:
            test = faces.faces(split.files(person, "test")[:1])
            inputs = to_canonical(torch.from_numpy(test)) if method.kind == "image" else \
                to_canonical(torch.from_numpy(faces.faces(split.files(person, "inference"))))
            mask = scale_to_budget(method.craft(inputs, [model], seed=0), budget)
            mask = mask[0] if mask.dim() == 4 else mask
            panels.append((person, test[0], mask.permute(1, 2, 0).numpy(), protect(test, mask)[0]))
        columns.append((name, panels))
    return columns


if __name__ == "__main__":
    main()
