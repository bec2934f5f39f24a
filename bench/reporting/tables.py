"""Tables 1-3 of the paper and the side tables, as frames, from a report's :class:`.Selection`.

Tables 1 and 2: rows source x method, columns target x (Top-1, Top-5) protection success rate (%),
then the average over black-box targets. The first row gives each target's clean identification
accuracy (%): a protection rate against a target that cannot identify clean faces means nothing.
White-box cells (the target is, or runs the same network as, the source) are marked in the second
frame and left out of the average. Table 3: method, mask type, t1, t2, average black-box Top-1
protection. Side tables: seeds, robustness (each scorer and transform side by side), realistic
delivery. Each function takes a Selection; plain rows are selected first (for one-off use).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BenchError
from .selection import (CLEAN_ROW, CONFIG_SETTINGS, DEFAULT_BUDGET, DEFAULT_N_INFERENCE, EFFICIENCY_SETTINGS,
                        PAPER_PROTOCOL, Rows, Selection, headline, protocol_of, row_labels)


def check_one_weights_per_target(df: pd.DataFrame) -> None:
    """A target's column reports one model: cells measured with other weights of it (a re-registered
    model, stale cells) are another experiment, not seeds to average."""
    for target, sub in df.groupby("target"):
        weights = sorted(sub["target_weights"].unique())
        if len(weights) > 1:
            raise BenchError(f"target {target!r} appears with {len(weights)} different weights in the selected cells "
                             f"({', '.join(weights)}); one column holds one model: delete the stale cells or report "
                             "each from its own --results folder")


def _clean_rate(sub: pd.DataFrame, column: str, target: str) -> float:
    """The target's clean rate, which every cell of the column must agree on (same model, same protocol)."""
    values = sorted(set(np.round(sub[column].dropna().astype(float), 12)))
    if len(values) > 1:
        raise BenchError(f"the cells for target {target!r} disagree on its {column} ({', '.join(f'{v:g}' for v in values)}): "
                         "they come from different protocols; report them from separate --results folders")
    return values[0] if values else np.nan


def protection_table(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
                     n_inference: int = DEFAULT_N_INFERENCE, ks=(1, 5),
                     targets: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table of percentages, same-shaped boolean frame marking white-box cells). One row per source,
    method and setting (see ROW_SETTINGS); only seeds are averaged."""
    selection = Selection.of(rows, budget, n_inference)
    if selection.cells(split).empty:
        raise ValueError(f"no results for split {split!r} at budget {selection.budget:g} with "
                         f"{selection.n_inference} inference images")
    check_one_weights_per_target(selection.cells(split))
    df = selection.labelled(split)
    targets = targets or sorted(df["target"].unique())
    cols = pd.MultiIndex.from_tuples([(t, f"Top-{k}") for t in targets for k in ks] + [("Average", f"Top-{k}") for k in ks])
    order = {m: i for i, m in enumerate(["none", "noise"])}
    groups = sorted(df.groupby(["source", "method", "row"]).groups, key=lambda smr: (smr[0] != "-", smr[0], order.get(smr[1], 9), smr[1], smr[2]))
    index = [CLEAN_ROW] + [(source, row) for source, _, row in groups]
    table = pd.DataFrame(index=pd.MultiIndex.from_tuples(index, names=["source", "method"]), columns=cols, dtype=float)
    white = pd.DataFrame(False, index=table.index, columns=cols)
    for t in targets:
        sub = df[df["target"] == t]
        for k in ks:
            table.loc[CLEAN_ROW, (t, f"Top-{k}")] = 100 * _clean_rate(sub, f"top{k}_clean_accuracy", t)
    for (source, row), g in df.groupby(["source", "row"]):
        for t in targets:
            cell = g[g["target"] == t]
            if cell.empty:
                continue
            for k in ks:
                table.loc[(source, row), (t, f"Top-{k}")] = 100 * cell[f"top{k}_protection"].mean()  # mean over seeds
                white.loc[(source, row), (t, f"Top-{k}")] = bool(cell["white_box"].iloc[0])
        for k in ks:
            vals = [v for t in targets if not white.loc[(source, row), (t, f"Top-{k}")]
                    and not pd.isna(v := table.loc[(source, row), (t, f"Top-{k}")])]
            table.loc[(source, row), ("Average", f"Top-{k}")] = np.mean(vals) if vals else np.nan
    for k in ks:
        table.loc[CLEAN_ROW, ("Average", f"Top-{k}")] = np.nanmean([table.loc[CLEAN_ROW, (t, f"Top-{k}")] for t in targets])
    return table, white


def efficiency_table(rows: Selection | Rows, split: str = "celebrities", budget: float = DEFAULT_BUDGET,
                     n_inference: int = DEFAULT_N_INFERENCE, by_source: bool = False) -> pd.DataFrame:
    """Table 3: per method (and per source with ``by_source``: a generator's t1 and SSIM follow the
    checkpoint it was trained against), mask type, t1, t2, black-box Top-1 protection, SSIM."""
    df = Selection.of(rows, budget, n_inference).cells(split)
    df = df[df["method"] != "none"]
    df = df.assign(row=row_labels(df, ["method"], EFFICIENCY_SETTINGS))
    keys = ["source", "row"] if by_source else ["row"]
    out = []
    for key, g in df.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        black = g[~g["white_box"].astype(bool)]
        out.append({
            **({"source": key[0]} if by_source else {}),
            "method": key[-1],
            "mask type": {"person": "person-specific", "image": "image-specific", "universal": "universal",
                          "baseline": "baseline", "external": "external tool (bench evaluate)"}[g["kind"].iloc[0]],
            "t1 (s/person)": g["t1"].dropna().mean() if g["t1"].notna().any() else np.nan,
            "t2 (s/image)": g["t2"].dropna().mean() if g["t2"].notna().any() else np.nan,
            "avg Top-1 protection (%)": 100 * black["top1_protection"].mean(),
            "SSIM": g["ssim"].mean(),
        })
    index = ["source", "method"] if by_source else ["method"]
    return pd.DataFrame(out, columns=index + ["mask type", "t1 (s/person)", "t2 (s/image)", "avg Top-1 protection (%)",
                                              "SSIM"]).set_index(index)


def seed_spread(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
                n_inference: int = DEFAULT_N_INFERENCE) -> pd.DataFrame:
    """Rows run with several seeds (``--seed 0,1,2``): per (source, method, target), the mean Top-1
    protection over seeds, its standard deviation and range, and the number of seeds (tables show the mean)."""
    df = Selection.of(rows, budget, n_inference).labelled(split)
    df = df.assign(rate=100 * df["top1_protection"])
    many = df.groupby(["source", "row", "target"]).filter(lambda g: g["seed"].nunique() > 1)
    if many.empty:
        return pd.DataFrame()
    spread = many.groupby(["source", "row", "target"])["rate"].agg(["mean", "std", "min", "max", "count"])
    return spread.rename(columns={"mean": "Top-1 mean (%)", "std": "sd over seeds", "min": "min", "max": "max", "count": "seeds"})


def robustness_table(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
                     n_inference: int = DEFAULT_N_INFERENCE) -> pd.DataFrame:
    """Per source and method, the black-box average of each scorer's headline protection (%) under each
    transform: crop-level probe-side identification (the paper's), then distortions, the gallery-side and
    linkability scorers and the adaptive attacker, side by side on the same masks. Empty when the rows hold
    only the paper's cells."""
    df = Selection.of(rows, budget, n_inference).cells(split, paper=False)
    if df.empty:
        return pd.DataFrame()
    # one label per method configuration: its protocol and transform variants are this table's columns
    df = df.assign(row=row_labels(df, ["source", "method"], CONFIG_SETTINGS))
    columns: dict[str, pd.Series] = {}
    for (protocol, transforms), g in df.groupby([protocol_of(df), df["transforms"].astype(str)]):
        field_label = headline(protocol)
        if field_label is None or field_label[0] not in g:
            continue
        field, label = field_label
        name = label + (f", {transforms}" if transforms else "")
        black = g[~g["white_box"].astype(bool)]
        columns[name] = 100 * black.groupby(["source", "row"])[field].mean()
    if len(columns) < 2:
        return pd.DataFrame()
    table = pd.DataFrame(columns)
    first = [c for c in table.columns if c == "probe-side"]
    return table[first + sorted(c for c in table.columns if c not in first)].rename_axis(["source", "method"])


def realistic_table(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
                    n_inference: int = DEFAULT_N_INFERENCE) -> pd.DataFrame:
    """The same masks crop-level and through the realistic pipeline (:mod:`bench.stages.realistic`), per
    source, method and target: probe-side Top-1 protection (%) and SSIM of the saved crops, then per
    realistic delivery its Top-1 protection, the photos the attacker did not re-detect (scored, never as
    protected) and the full photo's SSIM. Empty when no realistic cell is selected."""
    df = Selection.of(rows, budget, n_inference).cells(split, paper=False)
    df = df[protocol_of(df).str.startswith(PAPER_PROTOCOL)]
    transforms = df["transforms"].astype(str)
    if not transforms.str.startswith("realistic").any():
        return pd.DataFrame()
    df = df.assign(row=row_labels(df, ["source", "method"], CONFIG_SETTINGS))
    keys = ["source", "row", "target"]
    columns = {"white-box": df.groupby(keys)["white_box"].first().astype(bool)}
    crop = df[transforms == ""].groupby(keys)
    columns.update({"crop Top-1": 100 * crop["top1_protection"].mean(), "crop SSIM": crop["ssim"].mean()})
    realistic = df[transforms.str.startswith("realistic")]
    for spec, g in sorted(realistic.groupby("transforms"), key=lambda sg: (sg[0] != "realistic:png", sg[0])):
        by = g.groupby(keys)
        columns.update({f"{spec} Top-1": 100 * by["top1_protection"].mean(),
                        f"{spec} not re-detected": by["realistic_not_redetected"].max().astype("Int64"),
                        f"{spec} photos": by["realistic_photos"].max().astype("Int64"),
                        f"{spec} SSIM photo": by["ssim_photo"].mean()})
    return pd.DataFrame(columns).rename_axis(["source", "method", "target"])
