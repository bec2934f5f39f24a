"""The report's figures (seaborn; PNG and PDF), each made from whatever result rows exist.

- ``tradeoff-<split>``: Top-1 protection vs L2 budget and vs SSIM per method (paper Fig. 3b/4a), from cells
  at several budgets (``bench run --budget 400,800,1200,1600,2000``): solid lines the black-box average,
  dotted the white-box target;
- ``inference-<split>``: protection vs number of inference photos (Fig. 4b; ``--n-inference 1,3,5,10``), the
  same line styles, dashed: masks that use no inference photos;
- ``targets-<split>``: per black-box target Top-1 bars with 95% bootstrap intervals over identities;
- ``masks-<split>-<source>``: clean / mask (amplified) / protected photos of a few people per method
  (Fig. 5/6), from the masks in the result store;
- ``profile``: where the runs' time went, per stage, measured beside its compute floor (from the run
  profile, :mod:`bench.run_profile`; the page's "Where the time goes").

A figure whose rows are absent is skipped with a reason (:class:`Skipped`). Every file records the
command that made it: in the figure itself (bottom line), in PNG text chunks (Description, Software)
and in the PDF's Subject/Keywords.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..budget import protect, scale_to_budget
from ..data.splits import load_split
from ..features import FaceSource
from ..paths import reports_dir
from .claims import black_box_targets, rate_cells
from .selection import DEFAULT_BUDGET, DEFAULT_N_INFERENCE, Rows, Selection

REPORT_COMMAND = "bench report"


@dataclass
class Figure:
    name: str
    caption: str
    command: str
    files: list[Path] = field(default_factory=list)  # PNG first, then PDF

    @property
    def png(self) -> Path:
        return self.files[0]


@dataclass
class Skipped:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"figure {self.name} skipped: {self.reason}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def save(fig, out: Path, name: str, caption: str, command: str, dpi: int = 110) -> Figure:
    """Write ``fig`` as ``out/name.png`` and ``.pdf``, the caption and command in the picture and metadata."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig.text(0.005, 0.003, f"made by: {command}", fontsize=6, color="0.4", ha="left", va="bottom")
    made = f"made by: {command}"
    png, pdf = out / f"{name}.png", out / f"{name}.pdf"
    fig.savefig(png, dpi=dpi, metadata={"Title": name, "Description": f"{caption} {made}", "Software": command,
                                        "Comment": made})
    # no creation date: the same rows give the same PDF bytes (PNG carries no date)
    fig.savefig(pdf, metadata={"Title": name, "Subject": f"{caption} {made}", "Keywords": made, "Creator": command,
                               "CreationDate": None})
    plt.close(fig)
    return Figure(name, caption, command, [png, pdf])


# data ------------------------------------------------------------------------------------------------

def _labelled(rows: Selection | Rows, split: str) -> pd.DataFrame:
    """Rows of one split with a line label per (source, method, settings) (n_inference and budget vary
    along a line, so they are not part of it): :meth:`.Selection.figure_cells`."""
    return Selection.of(rows).figure_cells(split)


def _black_box(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per surrogate source: its black-box cells plus the baselines' cells on the same targets."""
    out = {}
    for source in sorted(s for s in set(df["source"]) if s != "-"):
        targets = black_box_targets(df, source)
        sub = df[df["source"].isin([source, "-"]) & df["target"].isin(targets) & ~df["white_box"].astype(bool)]
        if not sub.empty:
            out[source] = sub
    if not out and "-" in set(df["source"]):  # baselines only
        out["-"] = df[df["source"] == "-"]
    return out


def _white_box(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The cells of ``source``'s masks on the targets they were crafted on (white-box)."""
    return df[(df["source"] == source) & df["white_box"].astype(bool)] if source != "-" else df.iloc[:0]


def curve(df: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean Top-1 protection (%) and SSIM per (label, x) over ``df``'s cells (the black-box or the white-box
    ones), averaged over seeds then targets."""
    per_target = df.groupby(["label", x, "target"], as_index=False)[["top1_protection", "ssim"]].mean()
    out = per_target.groupby(["label", x], as_index=False).agg(protection=("top1_protection", "mean"),
                                                               ssim=("ssim", "mean"), targets=("target", "nunique"))
    return out.assign(protection=100 * out["protection"])


def _order(label: str) -> tuple:
    """Baselines first (none, then noise), then the methods by name."""
    return ({"none": 0, "noise": 1}.get(label, 2), label)


# One colour per method in every figure, a hue per family (AdvCloak blues, AdvFaces greens, OPOM reds,
# FI-UAP/FIM oranges, baselines greys); labels not listed (other methods, a second configuration of one)
# take husl colours.
METHOD_COLOURS = {
    "none": "#a6a6a6", "noise": "#525252",
    "advcloak": "#08306b", "advcloak-center": "#2171b5", "advcloak-affine": "#6baed6", "advcloak-convex": "#17becf",
    "advfaces-plus": "#2ca02c", "advfaces": "#98df8a",
    "opom-convex": "#d62728", "opom-center": "#ff9896", "opom-affine": "#e377c2",
    "fi-uap": "#ff7f0e", "fim": "#ffbb78", "lowkey": "#8c564b", "gap": "#9467bd",
    # the transform-robust (EOT) variants: darker shades of their family's hue
    "advcloak-eot": "#0b5563", "opom-convex-eot": "#7f0000", "fi-uap-eot": "#a63603",
}


def _palette(labels) -> dict:
    import seaborn as sns

    labels = sorted(set(labels), key=_order)
    out: dict = {}
    for label in labels:
        colour = METHOD_COLOURS.get(label)
        if colour and colour not in out.values():
            out[label] = colour
    rest = [label for label in labels if label not in out]
    out.update(zip(rest, sns.color_palette("husl", len(rest)) if rest else []))
    return out


LEGEND_INCHES = 2.1  # the legend's column right of the panels


def _panels(n: int, rows: int = 1, width: float = 4.2, height: float = 3.4):
    plt, _ = _pyplot()
    fig, axes = plt.subplots(rows, n, figsize=(width * n + LEGEND_INCHES + 0.3, height * rows + 0.4), squeeze=False)
    return fig, axes


def _legend_edge(fig) -> float:
    """Where the panels end (figure fraction): the legend's column lies right of it."""
    return 1 - LEGEND_INCHES / fig.get_figwidth()


def _legend(fig, axes, styles: dict[str, dict] | None = None) -> None:
    """One legend for all panels in its own column right of them (never over a curve; call after
    ``tight_layout(rect=(..., _legend_edge(fig), ...))``): the methods' colours and, below them,
    ``styles`` (label -> Line2D keywords): what the line styles mean."""
    from matplotlib.lines import Line2D

    handles, labels = {}, []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles and not lab.startswith("_"):
                handles[lab] = h
                labels.append(lab)
        if ax.get_legend():
            ax.get_legend().remove()
    x = _legend_edge(fig) + 0.01
    if handles:
        fig.legend([handles[lab] for lab in labels], labels, loc="lower left" if styles else "center left", fontsize=7,
                   frameon=False, bbox_to_anchor=(x, 0.5), title="method", title_fontsize=7,
                   alignment="left")
    if styles:  # a second block, so that a line style is never read as a method
        fig.legend([Line2D([], [], color="black", **style) for style in styles.values()], list(styles),
                   loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(x, 0.47), title="line",
                   title_fontsize=7, alignment="left")


BLACK_BOX_STYLE = {"ls": "-", "marker": "o", "markersize": 4}
WHITE_BOX_STYLE = {"ls": ":", "marker": "x", "markersize": 4, "lw": 1.2}
BASELINE_STYLE = {"ls": "--", "lw": 1}


def _several(c: pd.DataFrame, x: str) -> pd.DataFrame:
    """The lines of a curve with at least two points."""
    n = c.groupby("label")[x].nunique()
    return c[c["label"].isin(n[n >= 2].index)]


def _draw(ax, c: pd.DataFrame, x: str, palette: dict, style: dict, legend: bool) -> None:
    for label in sorted(set(c["label"]), key=_order):
        line = c[c["label"] == label].sort_values("budget" if "budget" in c else x)
        ax.plot(line[x], line["protection"], color=palette[label], label=label if legend else f"_{label}", **style)


# (a) trade-off ---------------------------------------------------------------------------------------

def tradeoff(selection: Selection, split: str, out: Path, command: str = REPORT_COMMAND) -> Figure | Skipped:
    """Top-1 protection against the L2 budget (top) and the SSIM it costs (bottom), at the selection's
    number of inference photos."""
    name = f"tradeoff-{split}"
    n_inference = selection.n_inference
    df = selection.figure_cells(split)
    df = df[(df["n_inference"] == n_inference) | (df["n_inference"] == 0)] if not df.empty else df
    panels = {}
    for source, sub in _black_box(df).items():
        c = _several(curve(sub, "budget"), "budget")
        if not c.empty:
            white = _white_box(df, source)
            w = _several(curve(white, "budget"), "budget") if not white.empty else c.iloc[:0]
            panels[source] = (c, w[w["label"].isin(set(c["label"]))], sorted(set(sub["target"])))
    if not panels:
        return Skipped(name, f"no method of split {split!r} has cells at several L2 budgets "
                             f"(with {n_inference} inference photos); run e.g. `bench run --split {split} --budget 400,800,1200,1600,2000`")
    palette = _palette(pd.concat([c for c, _, _ in panels.values()])["label"])
    fig, axes = _panels(len(panels), rows=2)
    for col, (source, (c, w, black)) in enumerate(panels.items()):
        for row, x in enumerate(("budget", "ssim")):
            ax = axes[row, col]
            _draw(ax, c, x, palette, BLACK_BOX_STYLE, legend=True)
            _draw(ax, w, x, palette, WHITE_BOX_STYLE, legend=False)
            ax.set_ylim(0, 102)
            ax.set_ylabel("Top-1 protection (%)")
            if x == "budget":
                ax.set_xticks(sorted(set(c["budget"])))
                ax.set_xlabel("L2 budget (0-255 pixel scale, 112x112 crop)")
            else:
                ax.set_xlabel("SSIM of the protected photo (1 = unchanged)")
                ax.invert_xaxis()  # left to right: more visible masks, as the budget axis
            if row == 0:
                ax.set_title((f"masks from {source}" if source != "-" else "baselines")
                             + f"\nblack-box targets: {', '.join(black)}", fontsize=9)
    fig.suptitle(f"{split}: protection vs L2 budget and vs SSIM ({n_inference} inference photos)", fontsize=10)
    fig.tight_layout(rect=(0, 0.02, _legend_edge(fig), 1))
    _legend(fig, axes, {"black-box average": BLACK_BOX_STYLE, "white-box (the source)": WHITE_BOX_STYLE})
    caption = (f"{split}: Top-1 protection success rate (%) against the L2 budget (top) and the SSIM it costs "
               f"(bottom); solid: mean over each source's black-box targets (baselines: the same targets), "
               f"dotted: the white-box target; {n_inference} inference photos.")
    return save(fig, out, name, caption, command)


# (b) number of inference photos ----------------------------------------------------------------------

def inference(selection: Selection, split: str, out: Path, command: str = REPORT_COMMAND) -> Figure | Skipped:
    """Top-1 protection against the number of inference photos, at the selection's budget."""
    name = f"inference-{split}"
    budget = selection.budget
    df = selection.figure_cells(split)
    df = df[np.isclose(df["budget"].astype(float), budget)] if not df.empty else df
    panels = {}
    for source, sub in _black_box(df).items():
        person = sub[sub["n_inference"] > 0]
        c = _several(curve(person, "n_inference"), "n_inference") if not person.empty else person.iloc[:0]
        if not c.empty:
            base = curve(sub[sub["n_inference"] == 0], "n_inference") if (sub["n_inference"] == 0).any() else None
            white = _white_box(df, source)
            white = white[white["n_inference"] > 0]
            w = _several(curve(white, "n_inference"), "n_inference") if not white.empty else c.iloc[:0]
            panels[source] = (c, w[w["label"].isin(set(c["label"]))], base, sorted(set(sub["target"])))
    if not panels:
        return Skipped(name, f"no person-specific method of split {split!r} has cells with several numbers of inference "
                             f"photos at L2 {budget:g}; run e.g. `bench run --split {split} --n-inference 1,3,5,10`")
    palette = _palette(pd.concat([c for c, *_ in panels.values()] + [p[2] for p in panels.values() if p[2] is not None])["label"])
    fig, axes = _panels(len(panels))
    for col, (source, (c, w, base, black)) in enumerate(panels.items()):
        ax = axes[0, col]
        _draw(ax, c, "n_inference", palette, BLACK_BOX_STYLE, legend=True)
        _draw(ax, w, "n_inference", palette, WHITE_BOX_STYLE, legend=False)
        for _, b in (base.iterrows() if base is not None else []):  # masks that use no photos: a flat line
            ax.axhline(b["protection"], color=palette[b["label"]], label=b["label"], **BASELINE_STYLE)
        ax.set_xticks(sorted(set(c["n_inference"])))
        ax.set_ylim(0, 102)
        ax.set_xlabel("inference photos per person")
        ax.set_ylabel("Top-1 protection (%)")
        ax.set_title(f"masks from {source}\nblack-box targets: {', '.join(black)}", fontsize=9)
    fig.suptitle(f"{split}: protection vs number of inference photos (L2 {budget:g})", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, _legend_edge(fig), 1))
    _legend(fig, axes, {"black-box average": BLACK_BOX_STYLE, "white-box (the source)": WHITE_BOX_STYLE,
                        "uses no inference photos\n(black-box average)": BASELINE_STYLE})
    caption = (f"{split}: Top-1 protection (%) of person-specific masks against the number of photos they were "
               f"crafted from, L2 {budget:g}; solid: mean over the source's black-box targets, dotted: the white-box "
               f"target; dashed: masks that use no inference photos (baselines, universal masks), black-box.")
    return save(fig, out, name, caption, command)


# (c) per-target bars with intervals -----------------------------------------------------------------

def targets(selection: Selection, split: str, out: Path, command: str = REPORT_COMMAND) -> Figure | Skipped:
    """Per black-box target, Top-1 bars with their 95% intervals (the cells of Tables 1-2)."""
    name = f"targets-{split}"
    budget, n_inference = selection.budget, selection.n_inference
    sub = selection.rows[selection.rows["split"] == split]
    data = rate_cells(selection, split) if not sub.empty and \
        np.isclose(sub["budget"].astype(float), budget).any() else pd.DataFrame()
    if data.empty:
        return Skipped(name, f"no black-box cells of split {split!r} at L2 {budget:g} with {n_inference} inference photos")
    plt, sns = _pyplot()
    sources = list(dict.fromkeys(data["source"]))
    palette = _palette(data["method"])
    bars = data.groupby("source")["method"].nunique().max() * data.groupby("source")["target"].nunique().max()
    fig, axes = plt.subplots(len(sources), 1, figsize=(min(13.0, max(6.0, 0.32 * bars + 2.5)), 3.0 * len(sources) + 0.6),
                             squeeze=False)
    for row, source in enumerate(sources):
        ax = axes[row, 0]
        d = data[data["source"] == source]
        labels = sorted(set(d["method"]), key=_order)
        tlist = sorted(set(d["target"]))
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            m = d[d["method"] == label].set_index("target").reindex(tlist)
            xs = np.arange(len(tlist)) + (i - (len(labels) - 1) / 2) * width
            ax.bar(xs, m["rate"], width, color=palette[label], label=label)
            ok = np.isfinite(m["low"].to_numpy(float)) & np.isfinite(m["rate"].to_numpy(float))
            if ok.any():  # intervals only where the cells carry per-identity counts
                ax.errorbar(xs[ok], m["rate"][ok], yerr=np.vstack([(m["rate"] - m["low"])[ok], (m["high"] - m["rate"])[ok]]),
                            fmt="none", ecolor="0.15", elinewidth=0.8, capsize=2)
        ax.set_xticks(np.arange(len(tlist)), tlist, fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("Top-1 protection (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"source {source}" if source != "-" else "baselines", fontsize=9)
    fig.suptitle(f"{split}: Top-1 protection per black-box target (L2 {budget:g}, {n_inference} inference photos)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.03, _legend_edge(fig), 1))
    _legend(fig, axes)
    no_ci = int(data["low"].isna().sum())
    caption = (f"{split}: Top-1 protection success rate (%) per black-box target; error bars: 95% bootstrap "
               f"interval over identities" + (f" ({no_ci} bar(s) without per-identity counts have none)" if no_ci else "")
               + ".")
    return save(fig, out, name, caption, command)


# (d) visual grids ------------------------------------------------------------------------------------

MATCHED_FIELDS = ("split", "split_hash", "source", "method", "method_config", "seed", "n_inference")


def stored_mask_sets(store, split: str, rows: pd.DataFrame | None = None) -> list[dict]:
    """Metadata (``key``, ``kind``, ...) of every mask set of ``split`` in the store; with ``rows``, only
    sets that one of the rows was measured with (same fields in the mask key and the row)."""
    found = []
    for meta_path in sorted(Path(store.masks).glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        key = meta.get("key") if isinstance(meta, dict) else None
        if not isinstance(key, dict) or key.get("split") != split or not meta_path.with_suffix(".safetensors").exists():
            continue
        found.append(meta)
    if rows is not None and not rows.empty:
        wanted = set()
        for r in rows.to_dict("records"):
            wanted.add(tuple((f, str(r.get(f))) for f in MATCHED_FIELDS if f in r and not _missing(r.get(f))))
        found = [m for m in found if any(all(str(m["key"].get(f)) == v for f, v in w if f in m["key"]) for w in wanted)]
    return found


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _choose_sets(metas: list[dict], methods: list[str] | None, source: str | None, n_inference: int) -> dict:
    """(source, method) -> the mask set to show: seed 0 first, then the wanted number of inference photos."""
    chosen: dict[tuple[str, str], dict] = {}
    for meta in sorted(metas, key=lambda m: (m["key"].get("seed", 0) != 0,
                                             m["key"].get("n_inference", 0) not in (n_inference, 0),
                                             -int(m["key"].get("n_inference", 0)))):
        k = meta["key"]
        if k.get("method") == "none" or (methods and k.get("method") not in methods):
            continue
        if source and k.get("source") not in (source, "-"):
            continue
        chosen.setdefault((k.get("source", "-"), k.get("method")), meta)
    return chosen


def amplified(mask: np.ndarray) -> np.ndarray:
    """A ``H x W x 3`` mask shown around mid-grey, stretched to its largest magnitude."""
    scale = float(np.abs(mask).max())
    return np.clip(0.5 + mask / (2 * scale), 0, 1) if scale > 0 else np.full_like(mask, 0.5)


def draw_mask_grid(columns: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]], title: str,
                   budget: float):
    """A figure with one column per method and three rows per person (clean, mask amplified, protected).
    ``columns``: [(method title, [(person, clean uint8 HxWx3, mask HxWx3 (canonical units), protected uint8)])]."""
    plt, _ = _pyplot()
    people = list(dict.fromkeys(p for _, panels in columns for p, *_ in panels))
    fig, axes = plt.subplots(3 * len(people), len(columns), figsize=(1.9 * len(columns) + 0.6, 1.9 * 3 * len(people) + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([]); ax.set_yticks([]); ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    for col, (method, panels) in enumerate(columns):
        axes[0, col].set_title(method, fontsize=8)
        for person, clean, mask, protected in panels:
            row = people.index(person)
            for k, (img, label) in enumerate(zip((clean, amplified(mask), protected),
                                                 ("clean", "mask (amplified)", f"protected, L2 {budget:g}"))):
                ax = axes[3 * row + k, col]
                ax.imshow(img)
                if col == 0:
                    ax.set_ylabel(f"{person}\n{label}" if k == 0 else label, fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


@dataclass
class GridColumns:
    """What a visual grid shows: per surrogate source, [(method, [(person, clean, mask, protected)])]."""
    split: str
    budget: float
    people: list[str]
    by_source: dict[str, list[tuple[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]]]
    sets: dict[tuple[str, str], dict]  # (source, method) -> the mask set's metadata (its key included)


def grid_columns(store, split: str, methods: list[str] | None = None, source: str | None = None, people: int = 2,
                 budget: float = 1200.0, n_inference: int = 10, rows: pd.DataFrame | None = None) -> GridColumns | Skipped:
    """The panels of the visual grids, from the masks ``bench run`` stored (nothing is crafted here): per
    surrogate source of ``split`` (baselines, source '-', join each), the first test photo of the first
    ``people`` identities clean, its mask scaled to ``budget`` and the protected photo."""
    name = f"masks-{split}"
    sets = _choose_sets(stored_mask_sets(store, split, rows), methods, source, n_inference)
    if not sets:
        return Skipped(name, f"no stored masks of split {split!r} in {store.masks}"
                             + (" that the reported rows were measured with" if rows is not None else ""))
    try:
        sp = load_split(split)
    except Exception as err:  # noqa: BLE001 - a missing split file is a reason to skip, shown to the user
        return Skipped(name, f"split {split!r} cannot be loaded ({err})")
    hashes = {m["key"].get("split_hash") for m in sets.values()} - {None}
    if hashes and sp.content_hash() not in hashes:
        return Skipped(name, f"the stored masks of {split!r} were made for other split files "
                             f"({', '.join(sorted(hashes))}, now {sp.content_hash()})")
    loaded = {}
    for key, meta in sets.items():
        got = store.load_masks(meta["key"])
        if got is not None:
            loaded[key] = got[0]
    chosen = [p for p in sp.identities() if loaded and all(p in m for m in loaded.values())][:people]
    if not chosen:
        return Skipped(name, "no identity of the split has a stored mask for every method")
    files = {p: sp.files(p, "test")[:1] for p in chosen}
    faces = FaceSource(sp.dataset, [f for fs in files.values() for f in fs], progress=False)
    by_source = {}
    for src in sorted({s for s, _ in loaded if s != "-"}) or ["-"]:
        keys = sorted([k for k in loaded if k[0] in (src, "-")], key=lambda k: (k[0] != "-", _order(k[1])))
        columns = []
        for key in keys:
            panels = []
            for p in chosen:
                clean = faces.faces(files[p])
                mask = loaded[key][p].float()
                mask = mask[:1] if mask.dim() == 4 else mask  # image-specific: the mask of this test photo
                scaled = scale_to_budget(mask, budget)
                shown = (scaled[0] if scaled.dim() == 4 else scaled).permute(1, 2, 0).numpy()
                panels.append((p, clean[0], shown, protect(clean, scaled)[0]))
            columns.append((key[1], panels))
        by_source[src] = columns
    return GridColumns(split, budget, chosen, by_source, {k: sets[k] for k in loaded})


def mask_grid(store, split: str, methods: list[str] | None = None, source: str | None = None, people: int = 2,
              budget: float = 1200.0, n_inference: int = 10, out: Path | None = None, command: str = REPORT_COMMAND,
              rows: pd.DataFrame | None = None) -> list[Figure | Skipped]:
    """Visual grids (Fig. 5/6) from the stored masks: one figure ``masks-<split>-<source>`` per surrogate
    source, columns = methods, three rows per person (see :func:`grid_columns`)."""
    out = Path(out) if out else reports_dir() / "figures"
    grid = grid_columns(store, split, methods, source, people, budget, n_inference, rows)
    if isinstance(grid, Skipped):
        return [grid]
    made: list[Figure | Skipped] = []
    for src, columns in grid.by_source.items():
        keys = [grid.sets[(s, m)]["key"] for s, m in grid.sets if s in (src, "-")]
        n_inf = sorted({int(k.get("n_inference", 0)) for k in keys} - {0})
        seeds = "/".join(str(x) for x in sorted({k.get("seed", 0) for k in keys}))
        fig = draw_mask_grid(columns, f"{split}: masks from {src if src != '-' else 'no surrogate'} at L2 {budget:g} "
                                      "(first test photo of each person)", budget)
        caption = (f"{split}, source {src}: clean test photo, its mask scaled to L2 {budget:g} and shown amplified "
                   f"around grey, and the protected photo, for {', '.join(grid.people)}; masks as stored by bench run "
                   f"(seed {seeds}{', ' + '/'.join(map(str, n_inf)) + ' inference photos' if n_inf else ''}).")
        # photo grids: 60 dpi keeps a 9-method grid near 1 MB (the PDF holds the full-resolution crops)
        made.append(save(fig, out, f"masks-{split}-{_slug(src)}", caption, command, dpi=60))
    return made


# (e) where the time goes -----------------------------------------------------------------------------

PROFILE_STAGES = 15  # the slowest stages drawn; the rest are summed into one bar


def profile_bars(profile: pd.DataFrame, out: Path, command: str = REPORT_COMMAND) -> Figure | Skipped:
    """Horizontal bars of each stage's measured wall time with its floor beside it, slowest first, from a
    profile table (profile.csv's columns: stage, seconds, floor_s; its 'total' row is left out)."""
    name = "profile"
    stages = profile[profile["stage"] != "total"] if not profile.empty else profile
    if stages.empty:
        return Skipped(name, "the run profile holds no stage")
    stages = stages.assign(seconds=pd.to_numeric(stages["seconds"], errors="coerce").fillna(0),
                           floor_s=pd.to_numeric(stages["floor_s"], errors="coerce"))
    stages = stages.sort_values("seconds", ascending=False, kind="stable")
    if len(stages) > PROFILE_STAGES:
        rest = stages.iloc[PROFILE_STAGES - 1:]
        other = {"stage": f"{len(rest)} other stages", "seconds": rest["seconds"].sum(),
                 "floor_s": rest["floor_s"].sum() if rest["floor_s"].notna().any() else np.nan}
        stages = pd.concat([stages.iloc[:PROFILE_STAGES - 1], pd.DataFrame([other])], ignore_index=True)
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.28 * len(stages)))
    y = np.arange(len(stages))
    ax.barh(y - 0.2, stages["seconds"], height=0.4, color="#4c72b0", label="measured")
    ax.barh(y + 0.2, stages["floor_s"].fillna(0), height=0.4, color="#aaaaaa", label="floor (where modelled)")
    ax.set_yticks(y, stages["stage"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("wall time (s), summed over the store's runs")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    caption = ("Where the time goes: each stage's measured wall time (blue) and its compute floor (grey: work "
               "items x the model's best per-item cost; no grey bar: a stage with no model in it, floor not modelled).")
    return save(fig, out, name, caption, command)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "none"


# all -------------------------------------------------------------------------------------------------

# The visual grids need the crafted masks, which only a result store holds (records keep the rates, not the
# masks). Every grid drawn is listed in figures/masks.json (name, caption, files), so a report made where the
# masks are absent (from the committed records, in a fresh clone) leaves the grids as they are and still
# names them on the page as the report that drew them did.
GRID_MANIFEST = "masks.json"


def kept_grids(kept: Path, split: str, out: Path) -> list[Figure]:
    """The visual grids of ``split`` that the figures folder ``kept`` lists in its manifest, as figures of
    ``out`` (their files copied there when ``out`` is another folder and ``kept`` has them)."""
    path = Path(kept) / GRID_MANIFEST
    try:
        listed = json.loads(path.read_text()) if path.exists() else []
    except (OSError, ValueError):
        return []
    made = []
    for entry in listed:
        if not isinstance(entry, dict) or not str(entry.get("name", "")).startswith(f"masks-{split}-"):
            continue
        files = [Path(out) / name for name in entry.get("files", [])]
        if Path(kept).resolve() != Path(out).resolve():
            for f in files:
                if (Path(kept) / f.name).exists():
                    out.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(Path(kept) / f.name, f)
        made.append(Figure(entry["name"], entry.get("caption", ""), entry.get("command", REPORT_COMMAND), files))
    return made


def write_grid_manifest(made: list, out: Path) -> None:
    grids = [{"name": f.name, "caption": f.caption, "command": f.command, "files": [p.name for p in f.files]}
             for f in made if isinstance(f, Figure) and f.name.startswith("masks-")]
    if grids:
        out.mkdir(parents=True, exist_ok=True)
        (out / GRID_MANIFEST).write_text(json.dumps(grids, indent=1) + "\n")


def write_figures(rows: Selection | Rows, out: Path, budget: float = DEFAULT_BUDGET,
                  n_inference: int = DEFAULT_N_INFERENCE, store=None, command: str = REPORT_COMMAND,
                  kept: Path | None = None) -> list[Figure | Skipped]:
    """Every figure the selection allows, into ``out`` (a reports/figures folder); skipped ones say why.
    ``kept``: a figures folder whose visual grids stand in for those whose masks ``store`` lacks."""
    selection = Selection.of(rows, budget, n_inference)
    rows, splits = selection.rows, selection.splits
    made: list[Figure | Skipped] = []
    for split in [s for s in ("celebrities", "commons") if s in splits] + sorted(splits - {"celebrities", "commons"}):
        made.append(tradeoff(selection, split, out, command))
        made.append(inference(selection, split, out, command))
        made.append(targets(selection, split, out, command))
        grids: list[Figure | Skipped] = [Skipped(f"masks-{split}", "no result store given to read masks from")]
        if store is not None:
            grids = mask_grid(store, split, budget=selection.budget, n_inference=selection.n_inference, out=out,
                              command=command, rows=rows[rows["split"] == split])
        if kept is not None and not any(isinstance(g, Figure) for g in grids):
            # a report from the records: the same wherever it runs, so the reason names no local folder
            grids = kept_grids(kept, split, out) or [Skipped(f"masks-{split}", "the masks are not here (records keep "
                                                             "rates, not masks; `bench run` stores them)")]
        made.extend(grids)
    write_grid_manifest(made, out)
    return made
