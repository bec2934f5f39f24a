"""The paper's numbers beside ours: AdvCloak (arXiv 2312.14407) Tables 1-2 against this benchmark.

The paper's models (CASIA-trained ArcFace/CosFace/Softmax sources, six MXNet targets) and ours differ,
so absolute rates are not comparable. What is compared is what the paper claims: the *ordering* of
methods and the *gaps* between them, each at the same source role (the white-box surrogate a mask is
crafted on) and on black-box targets only. Each claim gets one verdict:

- **reproduced**: our paired 95% interval (over the same people and targets) lies on the paper's side of 0;
- **not reproduced**: it lies on the other side;
- **not resolved**: it covers 0 (our identities cannot tell the two methods apart).

The paper's value of a method is the mean of its Avg Top-1 over the paper's three sources; "holds in"
counts the paper sources whose own table shows the same ordering.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from ..errors import BenchError
from ..paths import shared_dir
from ..uncertainty import bootstrap_rate
from .claims import compare, method_cells
from .render import markdown_table
from .selection import DEFAULT_BUDGET, DEFAULT_N_INFERENCE, Rows, Selection

PAPER_CSV = "reference/advcloak_paper_tables.csv"
TABLE_SPLIT = {"T1_PrivacyCommons": "commons", "T2_PrivacyCelebrities": "celebrities"}
METHOD_NAMES = {  # the paper's method name -> ours
    "GAP": "gap", "AdvFaces+": "advfaces-plus", "FI-UAP": "fi-uap", "AdvCloak": "advcloak",
    "OPOM-AffineHull": "opom-affine", "AdvCloak-AffineHull": "advcloak-affine",
    "OPOM-ClassCenter": "opom-center", "AdvCloak-ClassCenter": "advcloak-center",
    "OPOM-ConvexHull": "opom-convex", "AdvCloak-ConvexHull": "advcloak-convex",
}
# The orderings the paper's text argues from its tables (oriented by the paper's own numbers when compared).
CLAIMS = [("advcloak", "advfaces-plus"), ("advfaces-plus", "gap"), ("advcloak", "fi-uap"),
          ("advcloak-convex", "opom-convex"), ("advcloak-center", "opom-center"), ("advcloak-affine", "opom-affine"),
          ("opom-convex", "fi-uap"), ("opom-convex", "opom-affine"), ("opom-center", "opom-affine"),
          ("advcloak-convex", "advcloak"), ("advcloak-center", "advcloak"), ("advfaces-plus", "opom-convex")]
VERDICT = {"A": "reproduced", "B": "not reproduced", "not resolved": "not resolved"}


def paper_csv_path() -> Path:
    return shared_dir() / PAPER_CSV


def load_paper(path: Path | None = None) -> pd.DataFrame:
    """The paper's rows: table, split, source, method (ours), Avg_top1, Avg_top5 (%)."""
    path = Path(path) if path else paper_csv_path()
    if not path.exists():
        raise BenchError(f"the paper's tables are not at {path} (they come with the shared data folder)")
    df = pd.read_csv(path)
    unknown = sorted(set(df["method"]) - set(METHOD_NAMES))
    if unknown:
        raise BenchError(f"{path}: unknown method name(s) {', '.join(unknown)}")
    return df.assign(split=df["table"].map(TABLE_SPLIT), ours=df["method"].map(METHOD_NAMES))


def paper_means(paper: pd.DataFrame, split: str) -> pd.DataFrame:
    """Per method (our name): the paper's Avg Top-1/Top-5 averaged over its sources, and its rank (1 = best)."""
    sub = paper[paper["split"] == split]
    means = sub.groupby("ours")[["Avg_top1", "Avg_top5"]].mean()
    return means.assign(rank=means["Avg_top1"].rank(ascending=False, method="min").astype(int)).sort_values("rank")


def paper_gap(paper: pd.DataFrame, split: str, a: str, b: str) -> tuple[float, int, int] | None:
    """(mean over the paper's sources of Avg Top-1 of A minus B, sources where A > B, sources)."""
    sub = paper[paper["split"] == split].pivot_table(index="source", columns="ours", values="Avg_top1")
    if a not in sub or b not in sub:
        return None
    diff = (sub[a] - sub[b]).dropna()
    return float(diff.mean()), int((diff > 0).sum()), int(len(diff))


def _kendall(x: list[float], y: list[float]) -> float:
    return float(kendalltau(x, y).statistic) if len(x) >= 2 else np.nan


def comparison(rows: Selection | Rows, budget: float = DEFAULT_BUDGET, n_inference: int = DEFAULT_N_INFERENCE,
               paper: pd.DataFrame | None = None) -> dict:
    """Everything the paper-vs-ours section shows, per split: {'tables': {split: frame}, 'orderings':
    {split: {source: (tau, n)}}, 'claims': list of dicts, 'missing': {split: [claims not measured]}}."""
    selection = Selection.of(rows, budget, n_inference)
    paper = load_paper() if paper is None else paper
    out = {"tables": {}, "orderings": {}, "claims": [], "missing": {}}
    for split in [s for s in ("celebrities", "commons") if s in selection.splits and s in set(paper["split"])]:
        df = selection.labelled(split)
        if df.empty:
            continue
        means = paper_means(paper, split)
        table = pd.DataFrame({"paper Top-1": means["Avg_top1"].round(1), "paper Top-5": means["Avg_top5"].round(1),
                              "paper rank": means["rank"]})
        out["orderings"][split] = {}
        measured = set()
        for source in sorted(s for s in set(df["source"]) if s != "-"):
            targets, chosen = method_cells(df, source)
            ours = {}
            for m in [m for m in means.index if m in chosen]:
                try:
                    ours[m] = bootstrap_rate(chosen[m])
                except BenchError:
                    continue
            if not ours:
                continue
            est = pd.Series({m: iv.estimate for m, iv in ours.items()})
            table[f"ours {source} Top-1 [95% CI]"] = pd.Series({m: f"{iv.estimate:.1f} [{iv.low:.1f}, {iv.high:.1f}]"
                                                                 for m, iv in ours.items()})
            table[f"ours {source} rank"] = est.rank(ascending=False, method="min").astype(int)
            table[f"ours {source} rank"] = table[f"ours {source} rank"].astype("Int64")
            common = [m for m in means.index if m in ours]
            out["orderings"][split][source] = (_kendall(list(means.loc[common, "Avg_top1"]), [est[m] for m in common]),
                                               len(common))
            for a, b in CLAIMS:
                gap = paper_gap(paper, split, a, b)
                if gap is None:
                    continue
                first, second = (a, b) if not gap[0] < 0 else (b, a)
                c = compare(split, source, targets, chosen, first, second)
                if c is None:
                    continue
                measured.add((a, b))
                mean, holds, n = gap
                out["claims"].append({
                    "split": split, "source": source, "claim": f"{first} > {second}",
                    "paper gap": f"{abs(mean):.1f}", "paper holds in": f"{holds if mean >= 0 else n - holds}/{n}",
                    "our gap [95% CI]": str(c.interval), "verdict": VERDICT[c.verdict]})
        out["tables"][split] = table.rename_axis("method")
        out["missing"][split] = [f"{a} > {b}" for a, b in CLAIMS if (a, b) not in measured]
    return out


def paper_markdown(rows: Selection | Rows, budget: float = DEFAULT_BUDGET, n_inference: int = DEFAULT_N_INFERENCE,
                   paper: pd.DataFrame | None = None) -> str:
    selection = Selection.of(rows, budget, n_inference)
    budget, n_inference = selection.budget, selection.n_inference
    result = comparison(selection, paper=paper)
    lines = ["The paper's models and data differ from ours: compare orderings and gaps between methods, not absolute "
             "rates. Paper: Avg Top-1/Top-5 protection (%) averaged over its three sources (ArcFace, CosFace, "
             f"Softmax); ours: black-box average Top-1 (%) per source, L2 {budget:g}, {n_inference} inference photos.",
             ""]
    if not result["tables"]:
        return "\n".join(lines + ["No split of ours matches the paper's tables (celebrities, commons).", ""])
    for split, table in result["tables"].items():
        name = {"celebrities": "Privacy-Celebrities (paper Table 2)", "commons": "Privacy-Commons (paper Table 1)"}[split]
        lines += [f"**{split}** vs {name}", "", markdown_table(table.reset_index()), ""]
        for source, (tau, n) in result["orderings"].get(split, {}).items():
            lines.append(f"- ordering agreement, source {source}: Kendall tau {tau:+.2f} over {n} methods"
                         if not np.isnan(tau) else f"- source {source}: no ordering to compare ({n} common method(s), or all tied)")
        lines.append("")
        claims = [c for c in result["claims"] if c["split"] == split]
        if claims:
            lines += [markdown_table(pd.DataFrame(claims).drop(columns=["split"])), ""]
        if result["missing"].get(split):
            lines += [f"Not measured here (a side has no cells on the same black-box targets, or none with per-identity "
                      "counts): "
                      f"{', '.join(result['missing'][split])}.", ""]
    return "\n".join(lines) + "\n"

