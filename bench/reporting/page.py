"""One page for the whole report: ``reports/index.md`` and a static ``reports/index.html``.

The page holds Tables 1-3 (protection rates with their 95% intervals over identities), the claims
(paired intervals), the paper-vs-ours comparison, every figure that the rows allow (and why the others
were skipped), and the provenance of the rows (commit, package versions, device, recorded times).
The HTML is written from the same Markdown by a small converter (:func:`.render.markdown_to_html`: tables, lists, bold, code, links,
images): no JavaScript, no network, every link relative, so the folder can be copied or zipped. Files
that the git work tree holding the page ignores (.gitignore: the mask grids' PDFs, the commons grids) are
named but not linked, so the committed page has no dead link in a fresh clone.
"""

from __future__ import annotations

import re
import subprocess
import time
import webbrowser
from collections import Counter
from pathlib import Path

import pandas as pd

from ..errors import BenchError
from .claims import claims_markdown, interval_markdown, interval_table
from .figures import Figure, write_figures
from .paper import paper_markdown
from .render import markdown_table, markdown_to_html
from .selection import Selection
from .tables import efficiency_table

PAGE_MD, PAGE_HTML = "index.md", "index.html"


# Markdown pieces -------------------------------------------------------------------------------------

def provenance_markdown(rows: pd.DataFrame) -> str:
    """Commit(s), package versions, device(s) and recorded times of the rows."""
    provs = [p for p in rows.get("provenance", pd.Series(dtype=object)) if isinstance(p, dict)]
    lines = [f"- cells: {len(rows)} ({', '.join(f'{s}: {n}' for s, n in Counter(rows['split']).most_common())})"]
    if not provs:
        return "\n".join(lines + ["- the rows carry no provenance (made by an older version, or by hand)", ""]) + "\n"
    commits = Counter(str(p.get("commit", "unknown")) for p in provs)
    lines.append("- commit: " + "; ".join(f"`{c}` ({n} cells)" for c, n in commits.most_common()))
    devices = Counter(str(p.get("device", "unknown")) for p in provs)
    lines.append("- device: " + "; ".join(f"{d} ({n} cells)" for d, n in devices.most_common()))
    versions: dict[str, set] = {}
    for p in provs:
        for name, v in (p.get("versions") or {}).items():
            versions.setdefault(name, set()).add(str(v))
    if versions:
        lines.append("- versions: " + ", ".join(f"{n} {'/'.join(sorted(v))}" for n, v in sorted(versions.items())))
    extra = sorted({k for p in provs for k in p} - {"commit", "device", "versions"})
    for k in extra:  # anything else the runner records (start/end times, wall time, ...)
        values = Counter(str(p.get(k)) for p in provs if k in p)
        lines.append(f"- {k}: " + "; ".join(v for v, _ in values.most_common(3)) + (" ..." if len(values) > 3 else ""))
    craft = _craft_seconds(rows)
    shown = f"{craft:.0f} s" if craft < 120 else f"{craft / 60:.1f} min"
    lines.append(f"- recorded mask-crafting time: {shown} (t1 x identities, summed over "
                 "mask sets; protection and identification time is not recorded in the cells)")
    return "\n".join(lines) + "\n"


def _craft_seconds(rows: pd.DataFrame) -> float:
    keys = [c for c in ("split", "source", "method", "method_config", "seed", "n_inference") if c in rows]
    if "t1" not in rows or not keys:
        return 0.0
    first = rows.drop_duplicates(keys)
    n = first["identities"] if "identities" in first else pd.Series(1, index=first.index)
    return float((pd.to_numeric(first["t1"], errors="coerce").fillna(0) * pd.to_numeric(n, errors="coerce").fillna(0)).sum())


# figures ---------------------------------------------------------------------------------------------

def ignored_by_git(paths: list[Path]) -> set[Path]:
    """Those of ``paths`` that the git work tree holding them keeps out of the repository (.gitignore;
    a file committed anyway is not ignored). None when the paths are in no work tree or git is missing:
    the page then links every file it wrote."""
    paths = [Path(p).resolve() for p in paths]
    if not paths:
        return set()
    try:
        done = subprocess.run(["git", "check-ignore", "--stdin", "-z"], cwd=paths[0].parent, capture_output=True,
                              input=b"\0".join(str(p).encode() for p in paths), timeout=30)
    except (OSError, subprocess.SubprocessError):
        return set()
    if done.returncode not in (0, 1):  # 128: not in a git work tree
        return set()
    return {Path(p.decode()).resolve() for p in done.stdout.split(b"\0") if p}


def figures_markdown(made: list, out: Path) -> str:
    """The page's figure section for figures written under ``out``: each figure's PNG with its caption
    and a link to its PDF, and the skipped figures with their reasons. A file that .gitignore keeps out
    of the repository (the mask grids' PDFs, the commons grids) is named, not linked: the committed
    page must not point a fresh clone at files it does not have."""
    figures = [f for f in made if isinstance(f, Figure)]
    ignored = ignored_by_git([p for f in figures for p in f.files])
    md, unlinked = [], []
    for f in figures:
        png, pdf = f.png, f.files[1]
        if png.resolve() in ignored:
            unlinked.append(f)
            continue
        link = "" if pdf.resolve() in ignored else f" [PDF]({pdf.relative_to(out).as_posix()})"
        md += [f"![{f.name}]({png.relative_to(out).as_posix()})", f"*{f.caption}{link}*", ""]
    if ignored & {pdf.resolve() for f in figures if f not in unlinked for pdf in f.files[1:]}:
        md += ["Figures without a PDF link have one next to their PNG, written by `bench report` but kept out of "
               "git (.gitignore).", ""]
    if unlinked:
        md += ["Written by `bench report` but kept out of git (.gitignore), so not shown here: "
               + ", ".join(f"`{f.png.relative_to(out).as_posix()}`" for f in unlinked) + ".", ""]
    skipped = [f for f in made if not isinstance(f, Figure)]
    if skipped:
        md += ["Skipped:", ""] + [f"- {f.name}: {f.reason}" for f in skipped] + [""]
    return "\n".join(md) + "\n"


# the page --------------------------------------------------------------------------------------------

def build_sections(selection: Selection, out: Path, store=None, command: str = "bench report",
                   log=print, dated: bool = True, kept: Path | None = None) -> tuple[dict[str, str], list]:
    """The page's Markdown plus the side files it links to: ({file name: text}, figures). Figures are
    written to ``out/figures`` here; the text files are returned for the caller to write. ``dated``: say
    when (a page made from the records leaves it out, so the same records give the same page); ``kept``: see
    :func:`.figures.write_figures`."""
    rows, budget, n_inference = selection.rows, selection.budget, selection.n_inference
    files: dict[str, str] = {}
    stamp = f" on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}" if dated else ""
    md = ["# cloakbench report", "",
          f"Made by `{command}`{stamp}, from {len(rows)} result cells; L2 budget {budget:g}, "
          f"{n_inference} inference photos. Protection rates are percentages; intervals are 95% bootstrap "
          "intervals over identities.", "", "## Provenance", "", provenance_markdown(rows)]
    for number, split in ((1, "celebrities"), (2, "commons")):
        if split not in set(rows["split"]):
            md += [f"## Table {number}: {split}", "", f"No cells of split {split!r}.", ""]
            continue
        try:
            table, white, intervals = interval_table(selection, split)
        except ValueError as err:  # no cells at this budget / n_inference
            md += [f"## Table {number}: {split}", "", f"{err}.", ""]
            continue
        text = interval_markdown(table, white, intervals)
        files[f"table{number}_{split}_ci.md"] = text
        md += [f"## Table {number}: {split}", "", text,
               f"Files: [CSV](table{number}_{split}.csv), [LaTeX](table{number}_{split}.tex), "
               f"[Markdown without intervals](table{number}_{split}.md), "
               f"[Markdown with intervals](table{number}_{split}_ci.md).", ""]
    if "celebrities" in set(rows["split"]):
        try:
            eff = efficiency_table(selection, "celebrities")
            md += ["## Table 3: efficiency (celebrities)", "",
                   "t1: seconds to craft one person's mask; t2: seconds per image (image-specific methods).", "",
                   markdown_table(eff.reset_index()), ""]
        except (ValueError, KeyError) as err:
            md += ["## Table 3: efficiency", "", f"Not available: {err}.", ""]
    claims = claims_markdown(selection)
    files["claims.md"] = "# Claims\n\n" + claims
    md += ["## Claims", "", claims, ""]
    try:
        paper = paper_markdown(selection)
    except BenchError as err:
        paper = f"Not available: {err}\n"
    files["paper_vs_ours.md"] = "# AdvCloak paper vs this benchmark\n\n" + paper
    md += ["## Paper vs this benchmark", "", paper, ""]
    made = write_figures(selection, out / "figures", store=store, command=command, kept=kept)
    md += ["## Figures", "", figures_markdown(made, out)]
    for f in made:
        if not isinstance(f, Figure):
            log(str(f))
    files[PAGE_MD] = re.sub(r"\n{3,}", "\n\n", "\n".join(md))
    files[PAGE_HTML] = markdown_to_html(files[PAGE_MD], "cloakbench report")
    return files, made


def write_page(selection: Selection, out: Path, store=None, command: str = "bench report", log=print,
               dated: bool = True, kept: Path | None = None) -> list[Path]:
    """Interval tables, claims, paper comparison, figures and the page, into ``out``; the paths written
    (figures included), ``index.html`` last."""
    out = Path(out)
    files, made = build_sections(selection, out, store, command, log, dated, kept)
    paths = [p for f in made if hasattr(f, "files") for p in f.files]
    for name in sorted(files, key=lambda n: n == PAGE_HTML):
        (out / name).write_text(files[name])
        paths.append(out / name)
    return paths


def open_page(path: Path) -> str:
    """Open the page in a browser when there is one; never fails (a headless machine just gets the path)."""
    uri = Path(path).resolve().as_uri()
    try:
        opened = webbrowser.open(uri)
    except Exception as err:  # noqa: BLE001 - webbrowser.Error, a broken browser command, ...
        return f"could not open a browser ({err}); open {path} yourself"
    return f"opened {uri}" if opened else f"no browser available here; open {path} yourself"
