"""``bench report``: every file of the report from the result store's rows, the top stage of the layer.

The stages run one way: :mod:`.selection` (the rows, selected once) -> :mod:`.tables` -> :mod:`.claims`
(intervals, comparisons) -> :mod:`.paper` and :mod:`.figures` -> :mod:`.page` -> this module, which
makes one :class:`.Selection` per report and hands it to all of them; :mod:`.render` writes frames as
LaTeX, Markdown and HTML. Tables 1-2 are written as CSV, LaTeX and Markdown, Table 3 as CSV
and LaTeX, the side tables (robustness, realistic delivery, seeds) as CSV.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BenchError
from ..paths import reports_dir
from ..store import ResultStore
from ..superseded import describe, split_superseded
from .doctables import fill
from .page import write_page
from .render import frame_latex, protection_latex, protection_markdown
from .selection import DEFAULT_BUDGET, DEFAULT_N_INFERENCE, Selection, check_rates
from .tables import efficiency_table, protection_table, realistic_table, robustness_table, seed_spread


def as_typed(path: Path) -> str:
    """A path as a user would type it from here: relative under the working directory, else absolute. The
    figures record their command, and a committed figure should not carry one machine's folder names."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def report_files(selection: Selection) -> dict[str, str]:
    """Tables 1-3 and the side tables as {file name: text}: the long CSV of every row, then per split
    its CSV, LaTeX and Markdown tables."""
    df, budget = selection.rows, selection.budget
    files: dict[str, str] = {"results-long.csv": df.drop(columns=["provenance", "method_params", "per_identity_hits", "per_identity_pairs"], errors="ignore").to_csv(index=False)}
    for number, split in ((1, "celebrities"), (2, "commons")):
        if split not in selection.splits or selection.cells(split).empty:  # a split measured at other budgets only
            continue
        table, white = protection_table(selection, split)
        files[f"table{number}_{split}.csv"] = table.round(2).to_csv()
        files[f"table{number}_{split}.tex"] = protection_latex(
            table, white, f"Protection success rate (%) on {split}, L2 = {budget:g}. "
            "First row: clean identification accuracy (%). Dagger: white-box.")
        files[f"table{number}_{split}.md"] = protection_markdown(table, white)
    if "celebrities" in selection.splits and not selection.cells("celebrities").empty:
        eff = efficiency_table(selection, "celebrities")
        files["table3_efficiency.csv"] = eff.round(4).to_csv()
        files["table3_efficiency.tex"] = frame_latex(eff, "Efficiency: t1 = seconds to craft one person's mask, t2 = seconds per image.")
        per_source = efficiency_table(selection, "celebrities", by_source=True)
        files["table3_efficiency_by_source.csv"] = per_source.round(4).to_csv()
        files["table3_efficiency_by_source.tex"] = frame_latex(
            per_source.reset_index(level="source"), "Efficiency per source model (generators: the checkpoint trained against it).")
    for split in sorted(selection.splits):
        robust = robustness_table(selection, split)
        if not robust.empty:
            files[f"robustness_{split}.csv"] = robust.round(2).to_csv()
        realistic = realistic_table(selection, split)
        if not realistic.empty:
            files[f"realistic_{split}.csv"] = realistic.round(4).to_csv()
        spread = seed_spread(selection, split)
        if not spread.empty:
            files[f"seeds_{split}.csv"] = spread.round(2).to_csv()
    return files


def write_reports(rows: list[dict], out: Path | None = None, budget: float = DEFAULT_BUDGET,
                  n_inference: int = DEFAULT_N_INFERENCE, *, results=None, command: str | None = None,
                  log=print, dated: bool = True, kept: Path | None = None, docs: list[Path] = (),
                  origin: str | None = None, profiles: list[dict] | None = None,
                  costs: dict | None = None) -> list[Path]:
    """Write the tables to ``out`` (default: reports/ or BENCH_REPORTS). Every table is built before the
    first file is written, so a bad cell leaves the reports on disk as they were; so does an empty run.
    Then the interval tables, claims, paper comparison, figures and the page (:mod:`.page`): ``results``
    is the result store (folder or ResultStore; default: results/ or BENCH_RESULTS) whose masks the visual
    grids show, ``command`` what the figures record as their maker, ``log`` gets skipped figures' reasons
    and the cells left out for a replaced generator checkpoint (bench/superseded.py). ``dated``: the page
    says when it was made; ``kept``: a figures folder whose visual grids stand in for absent masks;
    ``docs``: Markdown files whose bench:table blocks are filled (:mod:`.doctables`; changed ones are
    rewritten and returned); ``origin``, ``profiles``, ``costs``: where the rows came from and the run
    profiles (with their unit costs) that profile.csv and the page's "where the time goes" show (default:
    the result store and its profiles)."""
    rows, stale = split_superseded(list(rows))
    for line in describe(stale):
        log(line)
    if not rows:
        return []
    selection = Selection(rows, budget, n_inference)  # the one selection every table, figure and the page read
    check_rates(selection.rows)
    if not any(not selection.cells(split).empty for split in selection.splits):
        df = selection.rows
        raise BenchError(f"no cells at L2 {budget:g} with {n_inference} inference photos to report; the store has budgets "
                         f"{', '.join(f'{b:g}' for b in sorted(set(df['budget'].astype(float))))} and inference photos "
                         f"{', '.join(str(n) for n in sorted(set(df['n_inference'].astype(int))) if n)} "
                         "(bench report --budget B --n-inference N)")
    files = report_files(selection)
    documents = {Path(d): Path(d).read_text() for d in docs}
    filled = {d: fill(text, selection, str(d)) for d, text in documents.items()}
    out = Path(out) if out else reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    written = [out / name for name in files]
    for doc, text in filled.items():
        if text != documents[doc]:
            doc.write_text(text)
            written.append(doc)
    store = results if isinstance(results, ResultStore) else ResultStore(results)
    command = command or (f"bench report --results {as_typed(store.root)} --out {as_typed(out)} --budget {budget:g} "
                          f"--n-inference {n_inference}")
    return written + write_page(selection, out, store=store, command=command, log=log, dated=dated, kept=kept,
                                origin=origin, profiles=profiles, costs=costs)
