"""Tables 1-3 of the paper from the result store, as CSV and LaTeX.

Tables 1 and 2: rows source x method, columns target x (Top-1, Top-5) protection success rate (%),
then the average over black-box targets. The first row gives each target's clean identification
accuracy (%): a protection rate against a target that cannot identify clean faces means nothing.
White-box cells (the target is, or runs the same network as, the source) carry a dagger in LaTeX and
are left out of the average. Table 3: method, mask type, t1, t2, average black-box Top-1 protection.
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BenchError
from .paths import reports_dir

CLEAN_ROW = ("clean accuracy", "(no mask)")
RATE_COLUMN = re.compile(r"^top\d+_(protection|clean_accuracy)$")
# Besides (source, method), the settings that make cells different experiments, never seeds to average:
# each distinct combination is its own table row. Split and budget are fixed by _select; the target is
# the column (one column cannot hold two target weights, see _check_one_weights_per_target).
ROW_SETTINGS = ("method_config", "n_inference", "protocol", "transforms", "source_weights")
EFFICIENCY_SETTINGS = ("method_config", "n_inference", "protocol", "transforms")  # Table 3 summarises over sources
SHOWN_IN_FULL = 40  # longer setting values (checksums) are cut to their first 12 characters in labels


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


def _with_settings(df: pd.DataFrame) -> pd.DataFrame:
    """Every ROW_SETTINGS column present (rows written by older code, or built by hand, may lack some)."""
    weights = df["weights"].astype(str) if "weights" in df else pd.Series("", index=df.index)
    return df.assign(
        source_weights=weights.str.split("->").str[0], target_weights=weights.str.split("->").str[-1],
        **{c: df[c].fillna("") if c in df else "" for c in ("method_config", "protocol", "transforms")},
        method_params=df["method_params"] if "method_params" in df else [{}] * len(df),
    )


# The paper's tables are probe-side identification on photos as saved; other scorers and transforms
# (attackers, distortions) are summarised side by side in robustness_table.
PAPER_PROTOCOL = "ident-"
# each protocol's headline protection field (higher = better protected), by protocol version prefix
HEADLINE = {"ident-": ("top1_protection", "probe-side"), "adaptive-ridge": ("adaptive_top1_protection", "adaptive attacker"),
            "adaptive-head": ("head_top1_protection", "adaptive attacker (metric head)"),
            "adaptive-finetune": ("finetune_top1_protection", "adaptive attacker (fine-tuned)"),
            "gallery-side": ("gallery_top1_protection", "gallery-side"), "linkability": ("link_top1_protection", "linkability")}


def _protocol_of(df: pd.DataFrame) -> pd.Series:
    return df["protocol"].fillna(PAPER_PROTOCOL).astype(str) if "protocol" in df else pd.Series(PAPER_PROTOCOL, index=df.index)


def _headline(protocol: str) -> tuple[str, str] | None:
    return next((v for prefix, v in HEADLINE.items() if protocol.startswith(prefix)), None)


def _select(rows: pd.DataFrame, split: str, budget: float, n_inference: int, paper_cells: bool = True) -> pd.DataFrame:
    """Cells of one split, budget and number of inference photos; ``paper_cells``: only the paper's
    protocol (probe-side identification) on photos as saved (no transform)."""
    df = rows[(rows["split"] == split) & np.isclose(rows["budget"].astype(float), budget)]
    if paper_cells:
        transforms = df["transforms"].fillna("").astype(str) if "transforms" in df else pd.Series("", index=df.index)
        df = df[_protocol_of(df).str.startswith(PAPER_PROTOCOL) & (transforms == "")]
    # methods that use no inference photos (baselines, image-specific) are stored with n_inference = 0
    df = df[(df["n_inference"] == n_inference) | (df["n_inference"] == 0)]
    check_rates(df)
    return _with_settings(df)


def _method_defaults(method: str) -> dict:
    import methods

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


def _row_labels(df: pd.DataFrame, by: list[str], settings: tuple[str, ...]) -> pd.Series:
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


def _check_one_weights_per_target(df: pd.DataFrame) -> None:
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


def protection_table(rows: pd.DataFrame, split: str, budget: float = 1200.0, n_inference: int = 10,
                     ks=(1, 5), targets: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table of percentages, same-shaped boolean frame marking white-box cells). One row per source,
    method and setting (see ROW_SETTINGS); only seeds are averaged."""
    df = _select(rows, split, budget, n_inference)
    if df.empty:
        raise ValueError(f"no results for split {split!r} at budget {budget:g} with {n_inference} inference images")
    _check_one_weights_per_target(df)
    df = df.assign(row=_row_labels(df, ["source", "method"], ROW_SETTINGS))
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


def efficiency_table(rows: pd.DataFrame, split: str = "celebrities", budget: float = 1200.0, n_inference: int = 10,
                     by_source: bool = False) -> pd.DataFrame:
    """Table 3: per method (and per source with ``by_source``: a generator's t1 and SSIM follow the
    checkpoint it was trained against), mask type, t1, t2, black-box Top-1 protection, SSIM."""
    df = _select(rows, split, budget, n_inference)
    df = df[df["method"] != "none"]
    df = df.assign(row=_row_labels(df, ["method"], EFFICIENCY_SETTINGS))
    keys = ["source", "row"] if by_source else ["row"]
    out = []
    for key, g in df.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        black = g[~g["white_box"].astype(bool)]
        out.append({
            **({"source": key[0]} if by_source else {}),
            "method": key[-1],
            "mask type": {"person": "person-specific", "image": "image-specific", "universal": "universal",
                          "baseline": "baseline"}[g["kind"].iloc[0]],
            "t1 (s/person)": g["t1"].dropna().mean() if g["t1"].notna().any() else np.nan,
            "t2 (s/image)": g["t2"].dropna().mean() if g["t2"].notna().any() else np.nan,
            "avg Top-1 protection (%)": 100 * black["top1_protection"].mean(),
            "SSIM": g["ssim"].mean(),
        })
    index = ["source", "method"] if by_source else ["method"]
    return pd.DataFrame(out, columns=index + ["mask type", "t1 (s/person)", "t2 (s/image)", "avg Top-1 protection (%)",
                                              "SSIM"]).set_index(index)


def seed_spread(rows: pd.DataFrame, split: str, budget: float = 1200.0, n_inference: int = 10) -> pd.DataFrame:
    """Rows run with several seeds (``--seed 0,1,2``): per (source, method, target), the mean Top-1
    protection over seeds, its standard deviation and range, and the number of seeds (tables show the mean)."""
    df = _select(rows, split, budget, n_inference)
    df = df.assign(row=_row_labels(df, ["source", "method"], ROW_SETTINGS), rate=100 * df["top1_protection"])
    many = df.groupby(["source", "row", "target"]).filter(lambda g: g["seed"].nunique() > 1)
    if many.empty:
        return pd.DataFrame()
    spread = many.groupby(["source", "row", "target"])["rate"].agg(["mean", "std", "min", "max", "count"])
    return spread.rename(columns={"mean": "Top-1 mean (%)", "std": "sd over seeds", "min": "min", "max": "max", "count": "seeds"})


def robustness_table(rows: pd.DataFrame, split: str, budget: float = 1200.0, n_inference: int = 10) -> pd.DataFrame:
    """Per source and method, the black-box average of each scorer's headline protection (%) under each
    transform: crop-level probe-side identification (the paper's), then distortions, the gallery-side and
    linkability scorers and the adaptive attacker, side by side on the same masks. Empty when the rows hold
    only the paper's cells."""
    df = _select(rows, split, budget, n_inference, paper_cells=False)
    if df.empty:
        return pd.DataFrame()
    # one label per method configuration: its protocol and transform variants are this table's columns
    df = df.assign(row=_row_labels(df, ["source", "method"], ("method_config", "n_inference", "source_weights")))
    columns: dict[str, pd.Series] = {}
    for (protocol, transforms), g in df.groupby([_protocol_of(df), df["transforms"].astype(str)]):
        headline = _headline(protocol)
        if headline is None or headline[0] not in g:
            continue
        field, label = headline
        name = label + (f", {transforms}" if transforms else "")
        black = g[~g["white_box"].astype(bool)]
        columns[name] = 100 * black.groupby(["source", "row"])[field].mean()
    if len(columns) < 2:
        return pd.DataFrame()
    table = pd.DataFrame(columns)
    first = [c for c in table.columns if c == "probe-side"]
    return table[first + sorted(c for c in table.columns if c not in first)].rename_axis(["source", "method"])


def realistic_table(rows: pd.DataFrame, split: str, budget: float = 1200.0, n_inference: int = 10) -> pd.DataFrame:
    """The same masks crop-level and through the realistic pipeline (:mod:`bench.stages.realistic`), per
    source, method and target: probe-side Top-1 protection (%) and SSIM of the saved crops, then per
    realistic delivery its Top-1 protection, the photos the attacker did not re-detect (scored, never as
    protected) and the full photo's SSIM. Empty when no realistic cell is selected."""
    df = _select(rows, split, budget, n_inference, paper_cells=False)
    df = df[_protocol_of(df).str.startswith(PAPER_PROTOCOL)]
    transforms = df["transforms"].astype(str)
    if not transforms.str.startswith("realistic").any():
        return pd.DataFrame()
    df = df.assign(row=_row_labels(df, ["source", "method"], ("method_config", "n_inference", "source_weights")))
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


def protection_markdown(table: pd.DataFrame, white: pd.DataFrame, intervals: dict | None = None) -> str:
    """The same table as Markdown (white-box cells marked with *), for READMEs and issue notes;
    ``intervals`` ({(row, column): Interval}) adds ' [low, high]' to the cells that have one."""
    intervals = intervals or {}
    targets = list(dict.fromkeys(t for t, _ in table.columns))
    ks = list(dict.fromkeys(k for _, k in table.columns))
    head = ["source", "method"] + [f"{t} {k}" for t in targets for k in ks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx in table.index:
        cells = []
        for col in table.columns:
            v = table.loc[idx, col]
            text = "-" if pd.isna(v) else f"{v:.1f}"
            iv = intervals.get((idx, col))
            if iv is not None and not pd.isna(v):
                text += f" [{iv.low:.1f}, {iv.high:.1f}]"
            cells.append(text + ("*" if white.loc[idx, col] else ""))
        lines.append("| " + " | ".join([str(idx[0]), str(idx[1])] + cells) + " |")
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


def _as_typed(path: Path) -> str:
    """A path as a user would type it from here: relative under the working directory, else absolute. The
    figures record their command, and a committed figure should not carry one machine's folder names."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def write_reports(rows: list[dict], out: Path | None = None, budget: float = 1200.0, n_inference: int = 10, *,
                  results=None, command: str | None = None, log=print) -> list[Path]:
    """Write the tables to ``out`` (default: reports/ or BENCH_REPORTS). Every table is built before the
    first file is written, so a bad cell leaves the reports on disk as they were; so does an empty run.
    Then the interval tables, claims, paper comparison, figures and the page (bench/page.py): ``results``
    is the result store (folder or ResultStore; default: results/ or BENCH_RESULTS) whose masks the visual
    grids show, ``command`` what the figures record as their maker, ``log`` gets skipped figures' reasons
    and the cells left out for a replaced generator checkpoint (bench/superseded.py)."""
    from .superseded import describe, split_superseded

    rows, stale = split_superseded(list(rows))
    for line in describe(stale):
        log(line)
    if not rows:
        return []
    df = pd.DataFrame(rows)
    check_rates(df)
    files: dict[str, str] = {"results-long.csv": df.drop(columns=["provenance", "method_params", "per_identity_hits", "per_identity_pairs"], errors="ignore").to_csv(index=False)}
    for number, split in ((1, "celebrities"), (2, "commons")):
        if split not in set(df["split"]):
            continue
        table, white = protection_table(df, split, budget, n_inference)
        files[f"table{number}_{split}.csv"] = table.round(2).to_csv()
        files[f"table{number}_{split}.tex"] = protection_latex(
            table, white, f"Protection success rate (%) on {split}, L2 = {budget:g}. "
            "First row: clean identification accuracy (%). Dagger: white-box.")
        files[f"table{number}_{split}.md"] = protection_markdown(table, white)
    if "celebrities" in set(df["split"]):
        eff = efficiency_table(df, "celebrities", budget, n_inference)
        files["table3_efficiency.csv"] = eff.round(4).to_csv()
        files["table3_efficiency.tex"] = frame_latex(eff, "Efficiency: t1 = seconds to craft one person's mask, t2 = seconds per image.")
        per_source = efficiency_table(df, "celebrities", budget, n_inference, by_source=True)
        files["table3_efficiency_by_source.csv"] = per_source.round(4).to_csv()
        files["table3_efficiency_by_source.tex"] = frame_latex(
            per_source.reset_index(level="source"), "Efficiency per source model (generators: the checkpoint trained against it).")
    for split in sorted(set(df["split"])):
        robust = robustness_table(df, split, budget, n_inference)
        if not robust.empty:
            files[f"robustness_{split}.csv"] = robust.round(2).to_csv()
        realistic = realistic_table(df, split, budget, n_inference)
        if not realistic.empty:
            files[f"realistic_{split}.csv"] = realistic.round(4).to_csv()
        spread = seed_spread(df, split, budget, n_inference)
        if not spread.empty:
            files[f"seeds_{split}.csv"] = spread.round(2).to_csv()
    out = Path(out) if out else reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    written = [out / name for name in files]
    from .page import write_page
    from .store import ResultStore

    store = results if isinstance(results, ResultStore) else ResultStore(results)
    command = command or (f"bench report --results {_as_typed(store.root)} --out {_as_typed(out)} --budget {budget:g} "
                          f"--n-inference {n_inference}")
    return written + write_page(df, out, budget, n_inference, store=store, command=command, log=log)
