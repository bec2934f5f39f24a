"""One page for the whole report: ``reports/index.md`` and a static ``reports/index.html``.

The page holds Tables 1-3 (protection rates with their 95% intervals over identities), the claims
(paired intervals), the paper-vs-ours comparison, every figure that the rows allow (and why the others
were skipped), and the provenance of the rows (commit, package versions, device, recorded times).
The HTML is written from the same Markdown by a small converter (tables, lists, bold, code, links,
images): no JavaScript, no network, every link relative, so the folder can be copied or zipped. Files
that the git work tree holding the page ignores (.gitignore: the mask grids' PDFs, the commons grids) are
named but not linked, so the committed page has no dead link in a fresh clone.
"""

from __future__ import annotations

import html
import re
import time
import webbrowser
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

PAGE_MD, PAGE_HTML = "index.md", "index.html"


# Markdown pieces -------------------------------------------------------------------------------------

def _cell_text(v) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v).replace("|", "/").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """A Markdown table of ``df``'s columns (the index is not shown: reset it first to show it)."""
    cols = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell_text(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


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


# Markdown -> HTML ------------------------------------------------------------------------------------

_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)"), r'<img src="\2" alt="\1">'),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
]


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def _table_html(lines: list[str]) -> str:
    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    head, body = cells(lines[0]), [cells(x) for x in lines[2:]]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(out + ["</tbody>", "</table>"])


def markdown_to_html(md: str, title: str) -> str:
    """The subset of Markdown this page uses: # headings, | tables |, - lists, paragraphs, figures
    (a line that is only an image, followed by an italic caption line)."""
    blocks, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := re.match(r"^(#{1,4}) (.*)$", line):
            level = len(m.group(1))
            anchor = re.sub(r"[^a-z0-9]+", "-", m.group(2).lower()).strip("-")
            blocks.append(f'<h{level} id="{anchor}">{_inline(m.group(2))}</h{level}>')
            i += 1
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            blocks.append(_table_html(lines[i:j]))
            i = j
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            blocks.append("<ul>\n" + "\n".join(items) + "\n</ul>")
        elif re.match(r"^!\[[^\]]*\]\([^)]+\)$", line.strip()):
            caption = lines[i + 1].strip() if i + 1 < len(lines) else ""
            has_caption = caption.startswith("*") and caption.endswith("*")
            text = _inline(caption.strip("*")) if has_caption else ""
            blocks.append(f"<figure>{_inline(line.strip())}<figcaption>{text}</figcaption></figure>")
            i += 2 if has_caption else 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("|", "- ", "#")):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1em}th,td{border:1px solid #ccc;"
             "padding:2px 6px;text-align:left}th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%;"
             "border:1px solid #eee}figcaption{font-size:12px;color:#555}code{font-size:12px}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
            + "\n".join(blocks) + "\n</body>\n</html>\n")


# figures ---------------------------------------------------------------------------------------------

def ignored_by_git(paths: list[Path]) -> set[Path]:
    """Those of ``paths`` that the git work tree holding them keeps out of the repository (.gitignore;
    a file committed anyway is not ignored). None when the paths are in no work tree or git is missing:
    the page then links every file it wrote."""
    import subprocess

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
    from .figures import Figure

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

def build_sections(rows: pd.DataFrame, out: Path, budget: float, n_inference: int, store=None,
                   command: str = "bench report", log=print) -> tuple[dict[str, str], list]:
    """The page's Markdown plus the side files it links to: ({file name: text}, figures). Figures are
    written to ``out/figures`` here; the text files are returned for the caller to write."""
    from .claims import claims_markdown, interval_markdown, interval_table
    from .errors import BenchError
    from .figures import Figure, write_figures
    from .paper import paper_markdown
    from .report import efficiency_table

    files: dict[str, str] = {}
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    md = ["# cloakbench report", "",
          f"Made by `{command}` on {stamp}, from {len(rows)} result cells; L2 budget {budget:g}, "
          f"{n_inference} inference photos. Protection rates are percentages; intervals are 95% bootstrap "
          "intervals over identities.", "", "## Provenance", "", provenance_markdown(rows)]
    for number, split in ((1, "celebrities"), (2, "commons")):
        if split not in set(rows["split"]):
            md += [f"## Table {number}: {split}", "", f"No cells of split {split!r}.", ""]
            continue
        try:
            table, white, intervals = interval_table(rows, split, budget, n_inference)
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
            eff = efficiency_table(rows, "celebrities", budget, n_inference)
            md += ["## Table 3: efficiency (celebrities)", "",
                   "t1: seconds to craft one person's mask; t2: seconds per image (image-specific methods).", "",
                   markdown_table(eff.reset_index()), ""]
        except (ValueError, KeyError) as err:
            md += ["## Table 3: efficiency", "", f"Not available: {err}.", ""]
    claims = claims_markdown(rows, budget, n_inference)
    files["claims.md"] = "# Claims\n\n" + claims
    md += ["## Claims", "", claims, ""]
    try:
        paper = paper_markdown(rows, budget, n_inference)
    except BenchError as err:
        paper = f"Not available: {err}\n"
    files["paper_vs_ours.md"] = "# AdvCloak paper vs this benchmark\n\n" + paper
    md += ["## Paper vs this benchmark", "", paper, ""]
    made = write_figures(rows, out / "figures", budget, n_inference, store, command)
    md += ["## Figures", "", figures_markdown(made, out)]
    for f in made:
        if not isinstance(f, Figure):
            log(str(f))
    files[PAGE_MD] = re.sub(r"\n{3,}", "\n\n", "\n".join(md))
    files[PAGE_HTML] = markdown_to_html(files[PAGE_MD], "cloakbench report")
    return files, made


def write_page(rows, out: Path, budget: float = 1200.0, n_inference: int = 10, store=None,
               command: str = "bench report", log=print) -> list[Path]:
    """Interval tables, claims, paper comparison, figures and the page, into ``out``; the paths written
    (figures included), ``index.html`` last."""
    rows = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    out = Path(out)
    files, made = build_sections(rows, out, budget, n_inference, store, command, log)
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
