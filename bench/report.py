"""Tables 1-3 of the paper from the result store, as CSV and LaTeX.

Tables 1 and 2: rows source x method, columns target x (Top-1, Top-5) protection success rate (%),
then the average over black-box targets. The first row gives each target's clean identification
accuracy (%): a protection rate against a target that cannot identify clean faces means nothing.
White-box cells (the target is, or runs the same network as, the source) carry a dagger in LaTeX and
are left out of the average. Table 3: method, mask type, t1, t2, average black-box Top-1 protection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .paths import reports_dir

CLEAN_ROW = ("clean accuracy", "(no mask)")


def _select(rows: pd.DataFrame, split: str, budget: float, n_inference: int) -> pd.DataFrame:
    df = rows[(rows["split"] == split) & np.isclose(rows["budget"].astype(float), budget)]
    # methods that use no inference photos (baselines, image-specific) are stored with n_inference = 0
    return df[(df["n_inference"] == n_inference) | (df["n_inference"] == 0)]


def protection_table(rows: pd.DataFrame, split: str, budget: float = 1200.0, n_inference: int = 10,
                     ks=(1, 5), targets: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table of percentages, same-shaped boolean frame marking white-box cells)."""
    df = _select(rows, split, budget, n_inference)
    if df.empty:
        raise ValueError(f"no results for split {split!r} at budget {budget:g} with {n_inference} inference images")
    targets = targets or sorted(df["target"].unique())
    cols = pd.MultiIndex.from_tuples([(t, f"Top-{k}") for t in targets for k in ks] + [("Average", f"Top-{k}") for k in ks])
    order = {m: i for i, m in enumerate(["none", "noise"])}
    groups = sorted(df.groupby(["source", "method"]).groups, key=lambda sm: (sm[0] != "-", sm[0], order.get(sm[1], 9), sm[1]))
    table = pd.DataFrame(index=pd.MultiIndex.from_tuples([CLEAN_ROW] + groups, names=["source", "method"]), columns=cols, dtype=float)
    white = pd.DataFrame(False, index=table.index, columns=cols)
    for t in targets:
        sub = df[df["target"] == t]
        for k in ks:
            if len(sub):
                table.loc[CLEAN_ROW, (t, f"Top-{k}")] = 100 * sub[f"top{k}_clean_accuracy"].iloc[0]
    for (source, method), g in df.groupby(["source", "method"]):
        for t in targets:
            cell = g[g["target"] == t]
            if cell.empty:
                continue
            for k in ks:
                table.loc[(source, method), (t, f"Top-{k}")] = 100 * cell[f"top{k}_protection"].mean()  # mean over seeds
                white.loc[(source, method), (t, f"Top-{k}")] = bool(cell["white_box"].iloc[0])
        for k in ks:
            vals = [v for t in targets if not white.loc[(source, method), (t, f"Top-{k}")]
                    and not pd.isna(v := table.loc[(source, method), (t, f"Top-{k}")])]
            table.loc[(source, method), ("Average", f"Top-{k}")] = np.mean(vals) if vals else np.nan
    for k in ks:
        table.loc[CLEAN_ROW, ("Average", f"Top-{k}")] = np.nanmean([table.loc[CLEAN_ROW, (t, f"Top-{k}")] for t in targets])
    return table, white


def efficiency_table(rows: pd.DataFrame, split: str = "celebrities", budget: float = 1200.0, n_inference: int = 10) -> pd.DataFrame:
    df = _select(rows, split, budget, n_inference)
    df = df[df["method"] != "none"]
    out = []
    for method, g in df.groupby("method"):
        black = g[~g["white_box"].astype(bool)]
        out.append({
            "method": method,
            "mask type": {"person": "person-specific", "image": "image-specific", "universal": "universal",
                          "baseline": "baseline"}[g["kind"].iloc[0]],
            "t1 (s/person)": g["t1"].dropna().mean() if g["t1"].notna().any() else np.nan,
            "t2 (s/image)": g["t2"].dropna().mean() if g["t2"].notna().any() else np.nan,
            "avg Top-1 protection (%)": 100 * black["top1_protection"].mean(),
            "SSIM": g["ssim"].mean(),
        })
    return pd.DataFrame(out).set_index("method")


def _tex_escape(text: str) -> str:
    return str(text).replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#")


def protection_latex(table: pd.DataFrame, white: pd.DataFrame, caption: str) -> str:
    targets = list(dict.fromkeys(t for t, _ in table.columns))
    ks = list(dict.fromkeys(k for _, k in table.columns))
    spec = "ll" + "".join("|" + "c" * len(ks) for _ in targets)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex_escape(caption)}}}", rf"\begin{{tabular}}{{{spec}}}", r"\hline"]
    lines.append("Source & Method & " + " & ".join(rf"\multicolumn{{{len(ks)}}}{{c}}{{{_tex_escape(t)}}}" for t in targets) + r" \\")
    lines.append(" & & " + " & ".join(k for _ in targets for k in ks) + r" \\")
    lines.append(r"\hline")
    for idx in table.index:
        cells = []
        for col in table.columns:
            v = table.loc[idx, col]
            text = "--" if pd.isna(v) else f"{v:.1f}"
            cells.append(text + (r"$^\dagger$" if white.loc[idx, col] else ""))
        lines.append(f"{_tex_escape(idx[0])} & {_tex_escape(idx[1])} & " + " & ".join(cells) + r" \\")
        if idx == CLEAN_ROW:
            lines.append(r"\hline")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def protection_markdown(table: pd.DataFrame, white: pd.DataFrame) -> str:
    """The same table as Markdown (white-box cells marked with *), for READMEs and issue notes."""
    targets = list(dict.fromkeys(t for t, _ in table.columns))
    ks = list(dict.fromkeys(k for _, k in table.columns))
    head = ["source", "method"] + [f"{t} {k}" for t in targets for k in ks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx in table.index:
        cells = []
        for col in table.columns:
            v = table.loc[idx, col]
            cells.append(("-" if pd.isna(v) else f"{v:.1f}") + ("*" if white.loc[idx, col] else ""))
        lines.append("| " + " | ".join([idx[0], idx[1]] + cells) + " |")
    return "\n".join(lines) + "\n"


def frame_latex(df: pd.DataFrame, caption: str) -> str:
    cols = [df.index.name or ""] + list(df.columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex_escape(caption)}}}",
             rf"\begin{{tabular}}{{l{'c' * len(df.columns)}}}", r"\hline",
             " & ".join(_tex_escape(c) for c in cols) + r" \\", r"\hline"]
    for idx, row in df.iterrows():
        vals = [("--" if pd.isna(v) else f"{v:.3g}") if isinstance(v, (float, np.floating)) else _tex_escape(v) for v in row]
        lines.append(" & ".join([_tex_escape(idx)] + vals) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_reports(rows: list[dict], out: Path | None = None, budget: float = 1200.0, n_inference: int = 10) -> list[Path]:
    out = out or reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    written = []
    long = out / "results-long.csv"
    df.drop(columns=["provenance", "method_params"], errors="ignore").to_csv(long, index=False)
    written.append(long)
    for number, split in ((1, "celebrities"), (2, "commons")):
        if df.empty or split not in set(df["split"]):
            continue
        table, white = protection_table(df, split, budget, n_inference)
        csv = out / f"table{number}_{split}.csv"
        table.round(2).to_csv(csv)
        tex = out / f"table{number}_{split}.tex"
        tex.write_text(protection_latex(table, white, f"Protection success rate (%) on {split}, L2 = {budget:g}. "
                                        "First row: clean identification accuracy (%). Dagger: white-box."))
        md = out / f"table{number}_{split}.md"
        md.write_text(protection_markdown(table, white))
        written += [csv, tex, md]
    if not df.empty and "celebrities" in set(df["split"]):
        eff = efficiency_table(df, "celebrities", budget, n_inference)
        eff.round(4).to_csv(out / "table3_efficiency.csv")
        (out / "table3_efficiency.tex").write_text(frame_latex(eff, "Efficiency: t1 = seconds to craft one person's mask, t2 = seconds per image."))
        written += [out / "table3_efficiency.csv", out / "table3_efficiency.tex"]
    return written
