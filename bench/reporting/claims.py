"""Intervals in the tables and the report's "A beats B" statements, from a report's selection of cells.

Every protection rate of Tables 1-2 gets its 95% percentile-bootstrap interval over identities (the
sampled unit; see :mod:`bench.uncertainty`), and every comparison the report makes is a paired
bootstrap over the same people and the same black-box targets. A comparison whose interval covers 0
is printed as "not resolved", never as a win.

Seeds of one cell (same split, source, method, config, target, budget, n_inference) are pooled per
person: hits and pairs are summed, which is the mean over seeds when every seed counts the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BenchError
from ..uncertainty import Interval, bootstrap_rate, paired_difference
from .render import protection_markdown
from .selection import DEFAULT_BUDGET, DEFAULT_N_INFERENCE, Rows, Selection
from .tables import protection_table

# Comparisons the report always makes when both sides were measured (besides every method vs noise).
HEADLINE = [("advcloak-convex", "opom-convex")]
BASELINE = "noise"


def has_counts(row) -> bool:
    hits, pairs = row.get("per_identity_hits"), row.get("per_identity_pairs")
    return isinstance(hits, dict) and isinstance(pairs, dict) and bool(hits) and bool(pairs)


def pool(cells: list[dict]) -> dict | None:
    """One cell from several seeds of the same target (per-person hits and pairs summed), or None when a
    cell has no per-identity counts (written by an older version, or built by hand)."""
    if not cells or not all(has_counts(c) for c in cells):
        return None
    if len(cells) == 1:
        return cells[0]
    people = set(cells[0]["per_identity_pairs"])
    if any(set(c["per_identity_pairs"]) != people for c in cells):
        return None
    ks = set(cells[0]["per_identity_hits"][next(iter(people))])
    hits = {p: {k: sum(c["per_identity_hits"][p][k] for c in cells) for k in ks} for p in people}
    pairs = {p: sum(c["per_identity_pairs"][p] for c in cells) for p in people}
    return {"target": cells[0]["target"], "cell": "+".join(str(c.get("cell", "?")) for c in cells),
            "per_identity_hits": hits, "per_identity_pairs": pairs}


def labelled(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
             n_inference: int = DEFAULT_N_INFERENCE) -> pd.DataFrame:
    """The cells Tables 1-2 use for ``split`` (the same selection), each with its table-row label ``row``."""
    return Selection.of(rows, budget, n_inference).labelled(split)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: v for k, v in r.items()} for r in frame.to_dict("records")]


def pooled_cells(df: pd.DataFrame) -> dict[tuple[str, str, str], dict | None]:
    """(source, row label, target) -> the pooled cell over seeds (None without per-identity counts)."""
    out = {}
    for (source, row, target), g in df.groupby(["source", "row", "target"], sort=False):
        out[(source, row, target)] = pool(_records(g))
    return out


def black_box_targets(df: pd.DataFrame, source: str) -> list[str]:
    """Targets that are black-box for ``source`` (every target of its cells that is not white-box)."""
    own = df[df["source"] == source]
    white = set(own.loc[own["white_box"].astype(bool), "target"])
    return sorted(set(own["target"]) - white)


def _interval(cells: list[dict | None], k: int) -> Interval | None:
    if not cells or any(c is None for c in cells):
        return None
    try:
        return bootstrap_rate(cells, k=k)
    except BenchError:  # cells over different people: no common resampling unit
        return None


def interval_table(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
                   n_inference: int = DEFAULT_N_INFERENCE, ks=(1, 5)) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Table 1/2 (values as :func:`.tables.protection_table`) plus, per cell, its 95% interval:
    (table, white, {(index, column): Interval})."""
    selection = Selection.of(rows, budget, n_inference)
    table, white = protection_table(selection, split, ks=ks)
    cells = pooled_cells(selection.labelled(split))
    targets = [t for t, _ in table.columns if t != "Average"]
    intervals: dict = {}
    for (source, row) in table.index[1:]:
        for k in ks:
            col = f"Top-{k}"
            black = []
            for t in dict.fromkeys(targets):
                cell = cells.get((source, row, t), "absent")
                if cell == "absent":
                    continue
                iv = _interval([cell], k)
                if iv is not None:
                    intervals[((source, row), (t, col))] = iv
                if not white.loc[(source, row), (t, col)]:
                    black.append(cell)
            iv = _interval(black, k)
            if iv is not None:
                intervals[((source, row), ("Average", col))] = iv
    return table, white, intervals


def interval_markdown(table: pd.DataFrame, white: pd.DataFrame, intervals: dict) -> str:
    """Markdown Table 1/2 with 'rate [low, high]' per cell (95% bootstrap over identities); * = white-box."""
    text = protection_markdown(table, white, intervals)
    missing = sum(1 for idx in table.index[1:] for col in table.columns
                  if not pd.isna(table.loc[idx, col]) and (idx, col) not in intervals)
    note = ("Protection success rate (%) with its 95% bootstrap interval over identities; * white-box (left out "
            "of the average); first row: clean identification accuracy (%).")
    if missing:
        note += f" {missing} cell(s) have no interval: their rows carry no per-identity counts (re-run them)."
    return text + "\n" + note + "\n"


@dataclass(frozen=True)
class Comparison:
    split: str
    source: str
    a: str
    b: str
    targets: tuple[str, ...]
    interval: Interval  # A minus B, percentage points, black-box average Top-k
    k: int = 1

    @property
    def verdict(self) -> str:
        """'A' (A ahead, interval above 0), 'B' (below 0) or 'not resolved'."""
        return "A" if self.interval.low > 0 else "B" if self.interval.high < 0 else "not resolved"

    def sentence(self) -> str:
        iv = self.interval
        if self.verdict == "A":
            return f"{self.a} beats {self.b} by {iv.estimate:.1f} points [{iv.low:.1f}, {iv.high:.1f}]"
        if self.verdict == "B":
            return f"{self.b} beats {self.a} by {-iv.estimate:.1f} points [{-iv.high:.1f}, {-iv.low:.1f}]"
        return (f"{self.a} vs {self.b}: not resolved ({iv.estimate:+.1f} points [{iv.low:+.1f}, {iv.high:+.1f}] "
                "covers 0)")


def method_cells(df: pd.DataFrame, source: str) -> tuple[list[str], dict[str, list[dict]]]:
    """Black-box targets of ``source`` and, per table-row label measured on all of them (the source's own
    methods and the baselines, source '-'), its pooled cells in target order."""
    targets = black_box_targets(df, source)
    cells = pooled_cells(df[df["source"].isin([source, "-"])])
    out: dict[str, list[dict]] = {}
    for label in dict.fromkeys(df.loc[df["source"].isin([source, "-"]), "row"]):
        by_target = [cells.get((source, label, t)) or cells.get(("-", label, t)) for t in targets]
        if targets and all(c is not None for c in by_target):
            out[label] = by_target
    return targets, out


def compare(split: str, source: str, targets: list[str], chosen: dict[str, list[dict]], a: str, b: str,
            k: int = 1) -> Comparison | None:
    if a not in chosen or b not in chosen:
        return None
    try:
        iv = paired_difference(chosen[a], chosen[b], k=k)
    except BenchError:
        return None
    return Comparison(split, source, a, b, tuple(targets), iv, k)


def comparisons(rows: Selection | Rows, budget: float = DEFAULT_BUDGET, n_inference: int = DEFAULT_N_INFERENCE,
                pairs: list[tuple[str, str]] | None = None, k: int = 1) -> list[Comparison]:
    """Per (split, source): every method vs noise, then ``pairs`` (default: advcloak-convex vs
    opom-convex) where both were measured on the same black-box targets."""
    selection = Selection.of(rows, budget, n_inference)
    out = []
    for split in sorted(selection.splits):
        df = selection.labelled(split)
        if df.empty:
            continue
        for source in sorted(s for s in set(df["source"]) if s != "-"):
            targets, chosen = method_cells(df, source)
            wanted = [(m, BASELINE) for m in chosen if m not in (BASELINE, "none")] + list(pairs or HEADLINE)
            for a, b in dict.fromkeys(wanted):
                c = compare(split, source, targets, chosen, a, b, k)
                if c is not None:
                    out.append(c)
    return out


def per_target_vs_noise(rows: Selection | Rows, split: str, source: str, budget: float = DEFAULT_BUDGET,
                        n_inference: int = DEFAULT_N_INFERENCE) -> pd.DataFrame:
    """Method x black-box target: the paired Top-1 difference to noise on that target alone, as text."""
    df = Selection.of(rows, budget, n_inference).labelled(split)
    targets, chosen = method_cells(df, source)
    if BASELINE not in chosen:
        return pd.DataFrame()
    out = {}
    for m in chosen:
        if m in (BASELINE, "none"):
            continue
        out[m] = {}
        for i, t in enumerate(targets):
            c = compare(split, source, [t], {m: [chosen[m][i]], BASELINE: [chosen[BASELINE][i]]}, m, BASELINE)
            out[m][t] = "-" if c is None else f"{c.interval} {'yes' if c.verdict == 'A' else 'no (reversed)' if c.verdict == 'B' else 'not resolved'}"
    return pd.DataFrame(out).T


def claims_markdown(rows: Selection | Rows, budget: float = DEFAULT_BUDGET, n_inference: int = DEFAULT_N_INFERENCE,
                    pairs: list[tuple[str, str]] | None = None) -> str:
    """The report's claims section: one line per comparison, grouped by split and source."""
    selection = Selection.of(rows, budget, n_inference)
    found = comparisons(selection, pairs=pairs)
    lines = [f"Paired bootstrap (2,000 resamples of the same people) of the black-box average Top-1 protection, "
             f"L2 {selection.budget:g}, {selection.n_inference} inference photos; 95% intervals in points. \"not resolved\": the "
             "interval covers 0.", ""]
    if not found:
        return "\n".join(lines + ["No comparison could be made: no split has a method and noise measured on the same "
                                  "black-box targets with per-identity counts.", ""])
    current = None
    for c in found:
        if (c.split, c.source) != current:
            current = (c.split, c.source)
            lines += ["", f"**{c.split}, source {c.source}** (black-box targets: {', '.join(c.targets)})", ""]
        lines.append(f"- {c.sentence()}")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def rate_cells(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
               n_inference: int = DEFAULT_N_INFERENCE) -> pd.DataFrame:
    """Long frame of (source, method label, target, Top-1 rate %, low, high) for black-box cells: the data
    of the per-target bar figure."""
    df = Selection.of(rows, budget, n_inference).labelled(split)
    if df.empty:
        return pd.DataFrame(columns=["source", "method", "target", "rate", "low", "high"])
    cells = pooled_cells(df)
    out = []
    for source in sorted(s for s in set(df["source"]) if s != "-"):
        targets = black_box_targets(df, source)
        sub = df[df["source"].isin([source, "-"]) & df["target"].isin(targets)]
        for (src, row, t), g in sub.groupby(["source", "row", "target"], sort=False):
            if bool(g["white_box"].astype(bool).any()):
                continue
            iv = _interval([cells[(src, row, t)]], 1)
            out.append({"source": source, "method": row, "target": t, "rate": 100 * float(g["top1_protection"].mean()),
                        "low": iv.low if iv else np.nan, "high": iv.high if iv else np.nan})
    return pd.DataFrame(out, columns=["source", "method", "target", "rate", "low", "high"])


# the leaderboard -------------------------------------------------------------------------------------

BLACK_BOX, WHITE_BOX, SSIM, T1 = "black-box Top-1", "white-box Top-1", "SSIM", "t1 (s/person)"
# which end of each leaderboard column is best: protection and SSIM high, crafting time low
LEADERBOARD_BEST = {BLACK_BOX: "max", WHITE_BOX: "max", SSIM: "max", T1: "min"}
LEADERBOARD_COLUMNS = ["method", "source", "kind", BLACK_BOX, "low", "high", WHITE_BOX, SSIM, T1]


def leaderboard(rows: Selection | Rows, split: str, budget: float = DEFAULT_BUDGET,
                n_inference: int = DEFAULT_N_INFERENCE, computed: tuple | None = None) -> pd.DataFrame:
    """The page's first table for one split: one row per row of Table 1/2 (source x method) except
    ``none`` (the unprotected photo every mask is measured against), best black-box average first.

    ``black-box Top-1`` with ``low``/``high`` is Table 1/2's Average Top-1 and its 95% interval over
    identities (the same cells and the same bootstrap: pass ``computed``, :func:`interval_table`'s result,
    to reuse it); ``white-box Top-1`` the mean over the targets that run the source's own network (empty
    for the baselines); ``SSIM`` and ``t1`` the means over the row's cells (t1 is empty for image-specific
    methods, which craft per image: see Table 3's t2). ``kind``: "baseline" for the rows of source "-"
    (noise), else "method"."""
    selection = Selection.of(rows, budget, n_inference)
    table, white, intervals = computed if computed is not None else interval_table(selection, split)
    cells = selection.labelled(split)
    targets = [t for t, k in table.columns if k == "Top-1" and t != "Average"]
    out = []
    for source, row in table.index[1:]:
        g = cells[(cells["source"] == source) & (cells["row"] == row)]
        if g.empty or (g["method"] == "none").all():
            continue
        index = (source, row)
        whites = [table.loc[index, (t, "Top-1")] for t in targets if white.loc[index, (t, "Top-1")]]
        whites = [v for v in whites if not pd.isna(v)]
        iv = intervals.get((index, ("Average", "Top-1")))
        t1 = pd.to_numeric(g["t1"], errors="coerce") if "t1" in g else pd.Series(dtype=float)
        ssim = pd.to_numeric(g["ssim"], errors="coerce") if "ssim" in g else pd.Series(dtype=float)
        out.append({"method": row, "source": source, "kind": "baseline" if source == "-" else "method",
                    BLACK_BOX: table.loc[index, ("Average", "Top-1")],
                    "low": iv.low if iv else np.nan, "high": iv.high if iv else np.nan,
                    WHITE_BOX: float(np.mean(whites)) if whites else np.nan,
                    SSIM: ssim.mean() if ssim.notna().any() else np.nan,
                    T1: t1.mean() if t1.notna().any() else np.nan})
    frame = pd.DataFrame(out, columns=LEADERBOARD_COLUMNS)
    return frame.sort_values(BLACK_BOX, ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def leaderboard_best(frame: pd.DataFrame) -> dict[str, set[int]]:
    """Per column of LEADERBOARD_BEST, the index of the best row(s) among the methods (ties all marked).
    The baselines are the reference, not contestants: noise costs no crafting time and would 'win' t1."""
    contestants = frame[frame["kind"] == "method"]
    best = {}
    for column, end in LEADERBOARD_BEST.items():
        values = pd.to_numeric(contestants[column], errors="coerce").dropna()
        if values.empty:
            best[column] = set()
            continue
        top = values.max() if end == "max" else values.min()
        best[column] = set(values.index[np.isclose(values, top, rtol=1e-9, atol=1e-12)])
    return best
