"""Protection against gallery size: how much of a mask's protection comes from the crowd.

    python -m bench.gallery_size [--results DIR] [--split celebrities] [--out reports/figures]

Reads the stored cells of `bench run` against galleries of several sizes (the recipe is in the
README: seeded samples of the LFW distractors, the distractors, the LFW + VGGFace2 + Glint crowd),
keeps the paper's protocol (probe-side identification, exact search, photos as saved, one budget) and
plots the mean Top-1 protection per method against the number of distractors, white-box and
black-box cells apart. A mask whose protection rises with the gallery is partly protected by the
crowd: with more distractors, a protected face needs to move less to lose its match.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .data.splits import load_split
from .errors import BenchError

GALLERIES = ("gallery-1k", "gallery-3k", "distractors", "crowd")


def gallery_of(protocol: str) -> str:
    """The gallery split's name inside a probe-side protocol key (``ident-v1/GALLERY/k1,5/far0.001``)."""
    parts = str(protocol).split("/")
    return parts[1] if len(parts) > 1 else ""


def curve(rows: pd.DataFrame, sizes: dict[str, int], split: str, budget: float = 1200.0,
          n_inference: int = 10) -> pd.DataFrame:
    """Mean Top-1 protection (and cells) per method, white-box or not, and gallery size. Only the (method,
    source, target) cells measured against every gallery present count, so each line compares the same
    masks and recognizers at every size (the default gallery also holds the sweeps' and other methods'
    cells); ``n_inference``: the inference-photo count of the masks (the sweep's other counts left out)."""
    if rows.empty:
        raise BenchError("no stored cells: run `bench run --gallery G` for each gallery first (README: gallery size)")
    from .reporting.selection import Selection

    # the report's own cell selection: split, budget, n_inference (or 0: the baselines, made from no photo),
    # probe-side identification on photos as saved; then exact search only
    df = Selection(rows, budget, n_inference).cells(split)
    df = df[~df["protocol"].astype(str).str.contains("/index:")].copy()
    df["gallery"] = df["protocol"].map(gallery_of)
    df = df[df["gallery"].isin(sizes)]
    key = ["method", "source", "target"]
    everywhere = df.groupby(key)["gallery"].transform("nunique") == df["gallery"].nunique()
    df = df[everywhere]
    if df.empty:
        raise BenchError(f"no probe-side cells of split {split!r} at budget {budget} against {', '.join(sizes)}")
    df["distractors"] = df["gallery"].map(sizes)
    df["box"] = df["white_box"].map({True: "white-box", False: "black-box"})
    return (df.groupby(["box", "method", "distractors"], as_index=False)
              .agg(top1_protection=("top1_protection", "mean"), cells=("top1_protection", "size")))


def plot(c: pd.DataFrame, out: Path, command: str):
    from .reporting.figures import _palette, _pyplot, save

    plt, sns = _pyplot()
    palette = _palette(c["method"])  # the report's colour per method, the same in both panels
    boxes = [b for b in ("white-box", "black-box") if b in set(c["box"])]
    fig, axes = plt.subplots(1, len(boxes), figsize=(4.4 * len(boxes), 3.4), squeeze=False, sharey=True)
    for ax, box in zip(axes[0], boxes):
        panel = c[c["box"] == box]
        sns.lineplot(data=panel, x="distractors", y="top1_protection", hue="method", marker="o", ax=ax,
                     palette=palette, hue_order=[m for m in palette if m in set(panel["method"])])
        ax.set(xscale="log", title=f"{box} cells", xlabel="distractors in the gallery (log)", ylabel="Top-1 protection")
    fig.tight_layout()
    caption = ("Mean Top-1 protection (probe-side, exact search, photos as saved) against the number of real "
               "distractors; each point averages the same cells (every source and target measured against every gallery).")
    return save(fig, out, "gallery-size", caption, command)


def main(argv: list[str] | None = None) -> None:
    from .paths import reports_dir
    from .store import ResultStore

    p = argparse.ArgumentParser(prog="python -m bench.gallery_size", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=None)
    p.add_argument("--split", default="celebrities")
    p.add_argument("--budget", type=float, default=1200.0)
    p.add_argument("--galleries", default=",".join(GALLERIES), help="gallery split names, comma-separated")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    sizes = {g: len(load_split(g).rows) for g in a.galleries.split(",")}
    store = ResultStore(Path(a.results)) if a.results else ResultStore()
    c = curve(pd.DataFrame(store.rows()), sizes, a.split, a.budget)
    print(c.to_string(index=False))
    fig = plot(c, Path(a.out) if a.out else reports_dir() / "figures", "python -m bench.gallery_size " + " ".join(argv or []))
    print(f"-> {fig.files[0]}" if hasattr(fig, "files") else fig)


if __name__ == "__main__":
    main()
