"""The rows one report is made from, selected once: the bottom stage of the report layer.

A :class:`Selection` holds a report's result rows with its L2 budget and number of inference photos;
every table, claim, figure and page takes it and asks it for the cells it shows (``cells``: one split at
the budget and number of inference photos, the paper's protocol on photos as saved unless told
otherwise; ``labelled``: the same cells with the label of their table row; ``figure_cells``: a split's
cells across budgets and numbers of inference photos, labelled as figure lines). Each subset is filtered
and labelled once per selection and shared by every consumer, so two tables of one report cannot
disagree on which cells they read.

Labels: cells that differ in something besides the seed (ROW_SETTINGS: method configuration, inference
photos, protocol, transforms, source weights) are different experiments, so each gets its own table row
named after what sets it apart (``opom-center [steps=8]``); seeds of one row are averaged.
"""

from __future__ import annotations

import numbers
import re
from typing import Iterable

import numpy as np
import pandas as pd

import methods
from ..errors import BenchError

Rows = pd.DataFrame | Iterable[dict]  # result rows as the store gives them, or as a frame
DEFAULT_BUDGET = 1200.0
DEFAULT_N_INFERENCE = 10
CLEAN_ROW = ("clean accuracy", "(no mask)")  # Tables 1-2's first row: each target's clean accuracy
RATE_COLUMN = re.compile(r"^top\d+_(protection|clean_accuracy)$")
# Besides (source, method), the settings that make cells different experiments, never seeds to average:
# each distinct combination is its own table row. Split and budget are fixed by the selection; the target
# is the column (one column cannot hold two target weights, see tables.check_one_weights_per_target).
ROW_SETTINGS = ("method_config", "n_inference", "protocol", "transforms", "source_weights")
EFFICIENCY_SETTINGS = ("method_config", "n_inference", "protocol", "transforms")  # Table 3 summarises over sources
# one label per method configuration where protocols and transforms are the columns (robustness, realistic)
CONFIG_SETTINGS = ("method_config", "n_inference", "source_weights")
FIGURE_SETTINGS = ("method_config", "protocol", "source_weights", "transforms")  # what keeps two lines apart
SHOWN_IN_FULL = 40  # longer setting values (checksums) are cut to their first 12 characters in labels

# The paper's tables are probe-side identification on photos as saved; other scorers and transforms
# (attackers, distortions) are summarised side by side in the robustness table.
PAPER_PROTOCOL = "ident-"
# each protocol's headline protection field (higher = better protected), by protocol version prefix
HEADLINE = {"ident-": ("top1_protection", "probe-side"), "adaptive-ridge": ("adaptive_top1_protection", "adaptive attacker"),
            "adaptive-head": ("head_top1_protection", "adaptive attacker (metric head)"),
            "adaptive-finetune": ("finetune_top1_protection", "adaptive attacker (fine-tuned)"),
            "gallery-side": ("gallery_top1_protection", "gallery-side"), "linkability": ("link_top1_protection", "linkability")}


# checks and settings ---------------------------------------------------------------------------------

def _cell_name(df: pd.DataFrame, index) -> str:
    if "cell" in df.columns and isinstance(df.at[index, "cell"], str):
        return f"cell {df.at[index, 'cell']} (cells/{df.at[index, 'cell']}.json in the result store)"
    return f"row {index}"


def check_rates(df: pd.DataFrame) -> None:
    """Top-k protection and clean accuracy are fractions: anything else is a corrupt or hand-edited cell,
    which would otherwise print as, say, 750%."""
    for col in [c for c in df.columns if RATE_COLUMN.match(str(c))]:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & ~values.between(0, 1)
        if bad.any():
            index = bad[bad].index[0]
            value = df.at[index, col]
            shown = f"{float(value):g}" if isinstance(value, numbers.Real) else repr(value)
            raise BenchError(f"{_cell_name(df, index)} has {col} = {shown}; "
                             f"rates are stored as fractions in [0, 1] ({int(bad.sum())} such cell(s))")


def with_settings(df: pd.DataFrame) -> pd.DataFrame:
    """Every ROW_SETTINGS column present (rows written by older code, or built by hand, may lack some)."""
    weights = df["weights"].astype(str) if "weights" in df else pd.Series("", index=df.index)
    return df.assign(
        source_weights=weights.str.split("->").str[0], target_weights=weights.str.split("->").str[-1],
        **{c: df[c].fillna("") if c in df else "" for c in ("method_config", "protocol", "transforms")},
        method_params=df["method_params"] if "method_params" in df else [{}] * len(df),
    )


def protocol_of(df: pd.DataFrame) -> pd.Series:
    return df["protocol"].fillna(PAPER_PROTOCOL).astype(str) if "protocol" in df else pd.Series(PAPER_PROTOCOL, index=df.index)


def headline(protocol: str) -> tuple[str, str] | None:
    """(headline protection field, column label) of a protocol version, None for an unknown one."""
    return next((v for prefix, v in HEADLINE.items() if protocol.startswith(prefix)), None)


# labels ----------------------------------------------------------------------------------------------

def _method_defaults(method: str) -> dict:
    return methods.method_info(method)["parameters"] if method in methods.METHODS else {}


def _shown(value) -> str:
    text = str(value)
    return text if len(text) <= SHOWN_IN_FULL else text[:12]


def _variant_labels(method: str, variants: pd.DataFrame, settings: tuple[str, ...]) -> list[str]:
    """One label per variant (row of ``variants``) of one method: the method's name plus what sets the
    variant apart, e.g. 'opom-center [steps=8]'. A parameter at its default is not shown, so the
    default-config row keeps the plain name; other settings (protocol, weights) show when they differ."""
    described = [{**{k: v for k, v in (params if isinstance(params, dict) else {}).items() if k != "method"},
                  **{c: row[c] for c in settings if c != "method_config"}}
                 for params, (_, row) in zip(variants["method_params"], variants.iterrows())]
    keys = sorted({k for d in described for k in d})
    differing = [k for k in keys if len({_shown(d.get(k, "-")) for d in described}) > 1]
    defaults = _method_defaults(method)
    parts = [[f"{k}={_shown(d.get(k, '-'))}" for k in differing if not (k in defaults and d.get(k) == defaults[k])]
             for d in described]
    labels = [", ".join(p) for p in parts]
    for i, config in enumerate(variants["method_config"]):
        if labels.count(labels[i]) > 1:  # same visible parameters, different config: name the config itself
            parts[i].append(f"config={_shown(config)[:8]}")
    return [f"{method} [{', '.join(p)}]" if p else method for p in parts]


def row_labels(df: pd.DataFrame, by: list[str], settings: tuple[str, ...]) -> pd.Series:
    """Per row of ``df``, the label of its table row: within each ``by`` group, one label per distinct
    combination of ``settings``."""
    labels = df["method"].astype(str).copy()
    if df.empty:
        return labels
    key = df[list(settings)].astype(str).agg("\x1f".join, axis=1)  # a string: pandas compares it as one value
    for _, group in df.groupby(by, sort=False):
        variants = group.loc[~key[group.index].duplicated()]
        if len(variants) < 2:
            continue
        for variant_key, label in zip(key[variants.index], _variant_labels(group["method"].iloc[0], variants, settings)):
            labels[group.index[key[group.index] == variant_key]] = label
    return labels


# the selection ---------------------------------------------------------------------------------------

class Selection:
    """A report's rows with its budget and number of inference photos; subsets made once, then shared.

    The frames it returns are shared by every table of the report: read them, derive new frames from
    them (``assign``, filtering), never change them in place."""

    def __init__(self, rows: Rows, budget: float = DEFAULT_BUDGET,
                 n_inference: int = DEFAULT_N_INFERENCE):
        self.rows = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        self.budget = budget
        self.n_inference = n_inference
        self._made: dict[tuple, pd.DataFrame] = {}

    @classmethod
    def of(cls, rows: Selection | Rows, budget: float = DEFAULT_BUDGET,
           n_inference: int = DEFAULT_N_INFERENCE) -> Selection:
        """``rows`` itself when it is a Selection (which carries its own budget and number of inference
        photos: the arguments then do not apply), else a new selection of the plain rows."""
        return rows if isinstance(rows, Selection) else cls(rows, budget, n_inference)

    @property
    def splits(self) -> set[str]:
        return set(self.rows["split"])

    def _once(self, key: tuple, make) -> pd.DataFrame:
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def cells(self, split: str, paper: bool = True) -> pd.DataFrame:
        """Cells of ``split`` at the budget and number of inference photos (methods that use no inference
        photos, stored with n_inference 0, included), rates checked and settings filled in; ``paper``:
        only the paper's protocol (probe-side identification) on photos as saved (no transform)."""
        return self._once(("cells", split, paper), lambda: self._select(split, paper))

    def _select(self, split: str, paper: bool) -> pd.DataFrame:
        rows = self.rows
        df = rows[(rows["split"] == split) & np.isclose(rows["budget"].astype(float), self.budget)]
        if paper:
            transforms = df["transforms"].fillna("").astype(str) if "transforms" in df else pd.Series("", index=df.index)
            df = df[protocol_of(df).str.startswith(PAPER_PROTOCOL) & (transforms == "")]
        df = df[(df["n_inference"] == self.n_inference) | (df["n_inference"] == 0)]
        check_rates(df)
        return with_settings(df)

    def labelled(self, split: str) -> pd.DataFrame:
        """The cells of Tables 1-2 for ``split`` (``cells(split)``), each with its table-row label ``row``."""
        def make():
            df = self.cells(split)
            return df.assign(row=row_labels(df, ["source", "method"], ROW_SETTINGS)) if not df.empty else df.assign(row=[])
        return self._once(("labelled", split), make)

    def figure_cells(self, split: str) -> pd.DataFrame:
        """Every cell of ``split`` (all budgets, numbers of inference photos, protocols and transforms),
        with a line label ``label`` per (source, method, settings): budget and n_inference vary along a
        line, so they are not part of it."""
        return self._once(("figure", split), lambda: self._figure_cells(split))

    def _figure_cells(self, split: str) -> pd.DataFrame:
        df = self.rows[self.rows["split"] == split]
        if df.empty:
            return df.assign(label=[])
        check_rates(df)
        df = with_settings(df)
        if "transforms" not in df:
            df = df.assign(transforms="")
        df = df.assign(transforms=df["transforms"].fillna("").astype(str))
        return df.assign(label=row_labels(df, ["source", "method"], FIGURE_SETTINGS))
