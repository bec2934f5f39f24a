"""What a mask keeps under each attacker, and the robust-training ablation: per-source tables with intervals.

Both read probe-side identification cells of one split and source under every transform chain the selection
holds (``""``: the crop as saved, the paper's setting; ``realistic:png``: the mask put into the full photo, saved
and re-detected; ``blur:1``, ``jpeg:75``...). A rate is the black-box average Top-1 protection (%) over the
targets other than the source, with its 95% bootstrap interval over identities
(:func:`bench.uncertainty.bootstrap_rate`); a method measured on only some of those targets under an attacker
shows ``-`` there rather than an average over fewer targets.

Both take a :class:`SourceCells` (built once per table: its note names the same targets).

* :func:`attacker_frame`: methods x attackers.
* :func:`ablation_frame`: methods x (black-box and white-box, crop and full photo, the paired full-photo
  difference to a reference method, SSIM): the table of the robust-training ablation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BenchError
from ..uncertainty import Interval, bootstrap_rate, paired_difference
from .claims import pooled_cells
from .selection import CONFIG_SETTINGS, PAPER_PROTOCOL, Selection, protocol_of, row_labels

CROP = ""
FULL_PHOTO = "realistic:png"
BASELINES = ("none", "noise")


def attacker_name(transforms: str) -> str:
    return {CROP: "crop (as saved)", FULL_PHOTO: "full photo"}.get(transforms, transforms)


def _order(transforms: str) -> tuple:
    """Crop first, then the full-photo deliveries, then the distortions by name."""
    return (transforms != CROP, not transforms.startswith("realistic"), transforms != FULL_PHOTO, transforms)


class SourceCells:
    """One split's probe-side identification cells from one source (and the baselines), by attacker."""

    def __init__(self, selection: Selection, split: str, source: str):
        df_all = selection.cells(split, paper=False)
        df = df_all[protocol_of(df_all).str.startswith(PAPER_PROTOCOL) & df_all["source"].isin([source, "-"])]
        if df.empty or not (df["source"] == source).any():
            raise BenchError(f"no probe-side cells of split {split!r} from source {source!r} at L2 "
                             f"{selection.budget:g}")
        self.source, self.split, self.budget, self.n_inference = source, split, selection.budget, selection.n_inference
        self.df = df.assign(row=row_labels(df, ["source", "method"], CONFIG_SETTINGS),
                            transforms=df["transforms"].fillna("").astype(str))
        # black-box: every target the split was measured on, except the source (an ensemble a+b: its members), so a
        # row missing a target shows '-' instead of an average over fewer targets
        own = self.df[self.df["source"] == source]
        self.white = sorted(set(own.loc[own["white_box"].astype(bool), "target"]) | set(source.split("+")) & set(df_all["target"]))
        self.black = sorted(set(df_all["target"]) - set(self.white))
        self.pooled = {t: pooled_cells(g) for t, g in self.df.groupby("transforms")}

    @property
    def attackers(self) -> list[str]:
        """The transform chains under which some mask of this source was measured (the baselines' alone: no column)."""
        own = set(self.df.loc[self.df["source"] == self.source, "transforms"])
        return sorted(own, key=_order)

    def cells(self, method: str, transforms: str, targets: list[str]) -> list[dict] | None:
        """The pooled cells of ``method`` under ``transforms`` on ``targets`` in order; None when one is missing."""
        pooled = self.pooled.get(transforms, {})
        found = [pooled.get((self.source, method, t)) or pooled.get(("-", method, t)) for t in targets]
        return found if targets and all(c is not None for c in found) else None

    def rate(self, method: str, transforms: str, white: bool = False) -> Interval | None:
        cells = self.cells(method, transforms, self.white if white else self.black)
        return None if cells is None else bootstrap_rate(cells, k=1)

    def ssim(self, method: str, transforms: str, column: str = "ssim") -> float:
        g = self.df[(self.df["row"] == method) & (self.df["transforms"] == transforms)]
        return float(g[column].mean()) if column in g and not g.empty else float("nan")

    def note(self) -> str:
        """The split, source, budget, people and which targets are black- and white-box, for a table's caption."""
        people = self.df["identities"].max() if "identities" in self.df else np.nan
        return (f"{self.split}, masks from {self.source}, L2 {self.budget:g}, {self.n_inference} inference photos"
                + ("" if pd.isna(people) else f", {int(people)} people")
                + f"; black-box targets: {', '.join(self.black)}; white-box: {', '.join(self.white) or 'none'}")


def _text(iv: Interval | None) -> str:
    return "-" if iv is None else f"{iv.estimate:.1f} [{iv.low:.1f}, {iv.high:.1f}]"


def _methods(cells: SourceCells, methods: list[str] | None) -> list[str]:
    known = list(dict.fromkeys(cells.df["row"]))
    wanted = methods or [m for m in known if m != "none"]
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise BenchError(f"no cells of {', '.join(unknown)} from {cells.source}; measured: {', '.join(known)}")
    return wanted


def attacker_frame(cells: SourceCells, methods: list[str] | None = None) -> pd.DataFrame:
    """Methods x attackers: black-box average Top-1 protection (%) [95% CI], then the crop's SSIM."""
    rows = []
    for method in _methods(cells, methods):
        row = {"method": method}
        row.update({attacker_name(t): _text(cells.rate(method, t)) for t in cells.attackers})
        row["SSIM"] = f"{cells.ssim(method, CROP):.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_frame(cells: SourceCells, methods: list[str], reference: str) -> pd.DataFrame:
    """Per method: black-box and white-box Top-1 protection (%) at crop level and through the full photo, the
    paired full-photo black-box difference to ``reference`` (points, 95% CI), and the crop's SSIM."""
    methods = _methods(cells, list(dict.fromkeys([reference, *methods])))
    ref = cells.cells(reference, FULL_PHOTO, cells.black)
    rows = []
    for method in methods:
        mine = cells.cells(method, FULL_PHOTO, cells.black)
        diff = "-" if method == reference or mine is None or ref is None else \
            f"{paired_difference(mine, ref, k=1)}"
        rows.append({"method": method,
                     "black-box crop": _text(cells.rate(method, CROP)),
                     "black-box full photo": _text(cells.rate(method, FULL_PHOTO)),
                     f"full photo vs {reference} (points)": diff,
                     "white-box crop": _text(cells.rate(method, CROP, white=True)),
                     "white-box full photo": _text(cells.rate(method, FULL_PHOTO, white=True)),
                     "SSIM": f"{cells.ssim(method, CROP):.3f}"})
    return pd.DataFrame(rows)


def full_photo_ranking(selection: Selection, split: str = "celebrities") -> pd.DataFrame:
    """The rule behind ``bench cloak``'s default method and source: every (method, source) row with probe-side
    cells through the full photo (``realistic:png``) on all of its black-box targets, at the selection's
    budget, ranked by that black-box average Top-1 protection, best first (ties: the higher lower bound).
    The baselines are left out, and so are rows of a non-default configuration (a sweep's variants: their
    label carries settings). SSIM of the crop and of the full photo stand beside the rate."""
    rows = []
    sources = sorted(set(selection.cells(split, paper=False)["source"]) - {"-"})
    for source in sources:
        try:
            cells = SourceCells(selection, split, source)
        except BenchError:
            continue
        for method in dict.fromkeys(cells.df.loc[cells.df["source"] == source, "row"]):
            iv = cells.rate(method, FULL_PHOTO)
            # a label that is not a bare method name is a sweep's variant (its settings follow the name): left out
            if iv is None or method in BASELINES or method not in set(cells.df["method"]):
                continue
            rows.append({"method": method, "source": source, "rate": iv.estimate, "low": iv.low, "high": iv.high,
                         "SSIM": cells.ssim(method, CROP), "SSIM photo": cells.ssim(method, FULL_PHOTO, "ssim_photo"),
                         "black-box targets": ",".join(cells.black)})
    frame = pd.DataFrame(rows, columns=["method", "source", "rate", "low", "high", "SSIM", "SSIM photo",
                                        "black-box targets"])
    return frame.sort_values(["rate", "low", "method", "source"], ascending=[False, False, True, True],
                             kind="stable").reset_index(drop=True)
