"""A visual grid per method: clean photo, mask (amplified), protected photo at L2 1,200, for a few people.

    python tools/mask_grid.py --source mobileface --methods opom-convex,advfaces-plus,advcloak-convex,gap \
        --out reports/figures/masks-mobileface.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench.budget import protect, scale_to_budget
from bench.data import open_dataset, prepare
from bench.data.splits import load_split
from bench.zoo import create_recognizer, to_canonical
from methods import create_method


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="mobileface")
    ap.add_argument("--methods", default="opom-convex,advfaces-plus,advcloak-convex,gap")
    ap.add_argument("--people", type=int, default=2)
    ap.add_argument("--budget", type=float, default=1200.0)
    ap.add_argument("--out", type=Path, default=Path("reports/figures/masks.png"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = load_split("celebrities")
    people = split.identities()[: args.people]
    files = [f for p in people for f in split.files(p, "inference") + split.files(p, "test")[:1]]
    faces = prepare(open_dataset("lfw"), only=sorted(files), progress=False)
    model = create_recognizer(args.source)
    methods = args.methods.split(",")
    fig, axes = plt.subplots(len(people) * 3, len(methods), figsize=(2.2 * len(methods), 2.2 * 3 * len(people)))
    for col, name in enumerate(methods):
        method = create_method(name)
        for row, person in enumerate(people):
            test = faces.faces(split.files(person, "test")[:1])
            inputs = to_canonical(torch.from_numpy(test)) if method.kind == "image" else \
                to_canonical(torch.from_numpy(faces.faces(split.files(person, "inference"))))
            mask = scale_to_budget(method.craft(inputs, [model], seed=0), args.budget)
            mask = mask[0] if mask.dim() == 4 else mask
            shown = mask.permute(1, 2, 0).numpy()
            panels = [test[0], np.clip(0.5 + shown / (2 * np.abs(shown).max()), 0, 1), protect(test, mask)[0]]
            for k, (img, label) in enumerate(zip(panels, ("clean", "mask (amplified)", f"protected, L2 {args.budget:g}"))):
                ax = axes[3 * row + k, col]
                ax.imshow(img); ax.set_xticks([]); ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(f"{person}\n{label}" if k == 0 else label, fontsize=7)
            if row == 0:
                axes[0, col].set_title(name, fontsize=9)
    fig.suptitle(f"masks from {args.source} (celebrities test photos)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
