"""One page for the whole report: ``reports/index.md`` and a static ``reports/index.html``.

The page opens with the answer: a leaderboard per split (method, source, black-box average Top-1
protection with its 95% interval over identities, white-box protection, SSIM, t1; the best of each
column marked), the trade-off figure beside it, and one line saying which cells and commits the numbers
come from. Then where the runs' time went (the run profile against its compute floor), the provenance
of the rows (commit, package versions, device, recorded times), Tables 1-3, the claims (paired
intervals), the paper-vs-ours comparison, and every figure that the rows allow (and why the others were
skipped).

The HTML is written from the same Markdown by a small converter (:func:`.render.markdown_to_html`:
tables, lists, bold, code, links, images); the leaderboards are sortable there, by a few lines of plain
JavaScript inline in the page (:data:`.render.SORT_SCRIPT`): no network, every link relative, so the
folder can be copied or zipped. Files that the git work tree holding the page ignores (.gitignore: the
mask grids' PDFs, the commons grids) are named but not linked, so the committed page has no dead link
in a fresh clone.
"""

from __future__ import annotations

import html
import re
import subprocess
import time
import webbrowser
from collections import Counter
from pathlib import Path

import pandas as pd

from ..errors import BenchError
from ..run_profile import write_profile
from .claims import (BLACK_BOX, SSIM, T1, WHITE_BOX, claims_markdown, interval_markdown, interval_table, leaderboard,
                     leaderboard_best)
from .figures import Figure, Skipped, profile_bars, write_figures
from .paper import paper_markdown
from .render import SORT_SCRIPT, heading_anchor, markdown_table, markdown_to_html, sortable_table
from .selection import Selection
from .tables import efficiency_table

PAGE_MD, PAGE_HTML = "index.md", "index.html"
PROFILE_CSV = "profile.csv"
SPLITS = ((1, "celebrities"), (2, "commons"))  # Table number and split, in the page's order


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


def origin_line(rows: pd.DataFrame, origin: str) -> str:
    """One line under the leaderboard: how many cells the numbers come from, where, and at which commit(s)."""
    provs = [p for p in rows.get("provenance", pd.Series(dtype=object)) if isinstance(p, dict)]
    head = f"Numbers from {len(rows)} result cells of {origin}"
    if not provs:
        return head + "; the cells record no commit (made by an older version, or by hand)."
    commits = Counter(str(p.get("commit", "unknown")) for p in provs)
    dirty = sum(n for c, n in commits.items() if c.endswith("-dirty"))
    if len(commits) == 1:
        commit = next(iter(commits))
        where = (f"all made at commit `{commit.removesuffix('-dirty')}` with uncommitted changes" if dirty
                 else f"all made at commit `{commit}`")
    else:
        top, n = commits.most_common(1)[0]
        where = (f"made at {len(commits)} commits (most, {n} cells: `{top}`)"
                 + (f"; {dirty} cells with uncommitted changes" if dirty else ""))
    return f"{head}, {where}; details under [Provenance](#{heading_anchor('Provenance')})."


def _shown_path(path: Path) -> str:
    """A folder as a user would type it from here: relative under the working directory, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


# the leaderboard -------------------------------------------------------------------------------------

LEADERBOARD_LEAD = ("Per split, every method and source, best black-box protection first; **bold**: the best of each "
                    "column among the methods (noise is the reference, not a contestant). In the HTML page a click on a "
                    "column's header sorts by it.")
LEADERBOARD_NOTE = (
    "**Black-box Top-1**: protection success rate (%) averaged over the targets that do not run the source's network "
    "(the baselines: over all targets), with its 95% bootstrap interval over identities (Tables 1-2's Average "
    "Top-1); **white-box Top-1**: against the source's own network; **SSIM**: of the protected photo (1 = "
    "unchanged); **t1**: seconds to craft one person's mask (empty: image-specific methods, see Table 3's t2).")

# (header, column of the frame, the direction a first click sorts)
LEADERBOARD_HEAD = [("method", "method", "ascending"), ("source", "source", "ascending"),
                    ("black-box Top-1 [95% CI]", BLACK_BOX, "descending"), ("white-box Top-1", WHITE_BOX, "descending"),
                    ("SSIM", SSIM, "descending"), ("t1 (s/person)", T1, "ascending")]


def _number(column: str, v) -> str:
    if v is None or pd.isna(v):
        return "-"
    return f"{v:.3f}" if column == SSIM else f"{v:.3g}" if column == T1 else f"{v:.1f}"


def leaderboard_cells(frame: pd.DataFrame) -> list[list[tuple[str, object, bool]]]:
    """Per row of a leaderboard frame, per LEADERBOARD_HEAD column: (text, sort key, best)."""
    best = leaderboard_best(frame)
    out = []
    for i, r in frame.iterrows():
        cells = []
        for _, column, _ in LEADERBOARD_HEAD:
            v = r[column]
            if column in ("method", "source"):
                cells.append((str(v), str(v), False))
                continue
            text = _number(column, v)
            if column == BLACK_BOX and not pd.isna(r["low"]) and text != "-":
                text += f" [{r['low']:.1f}, {r['high']:.1f}]"
            cells.append((text, None if pd.isna(v) else float(v), i in best.get(column, set())))
        out.append(cells)
    return out


def leaderboard_markdown(frame: pd.DataFrame) -> str:
    head = [h for h, _, _ in LEADERBOARD_HEAD]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cells in leaderboard_cells(frame):
        texts = [(f"**{t}**" if best else t).replace("|", "/") for t, _, best in cells]
        lines.append("| " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_html(frame: pd.DataFrame, split: str, figure: Figure | Skipped | None, out: Path, ignored: set[Path]) -> str:
    """The sortable leaderboard of one split with its trade-off figure beside it (linked to the full-size PNG)."""
    table = sortable_table([(h, first) for h, _, first in LEADERBOARD_HEAD], leaderboard_cells(frame),
                           f"{split}: {len(frame)} rows; click a column's header to sort by it",
                           sorted_by=[c for _, c, _ in LEADERBOARD_HEAD].index(BLACK_BOX))
    if isinstance(figure, Figure) and figure.png.resolve() not in ignored:
        png = html.escape(figure.png.relative_to(out).as_posix(), quote=True)
        side = (f'<figure><a href="{png}"><img src="{png}" alt="{html.escape(figure.name, quote=True)}: '
                f'protection vs L2 budget and vs SSIM"></a><figcaption>{html.escape(figure.caption)}</figcaption></figure>')
    elif isinstance(figure, Skipped):
        side = f"<p>Trade-off figure skipped: {html.escape(figure.reason)}</p>"
    else:
        side = ""
    return f'<div class="board">\n{table}\n{side}\n</div>'


def leaderboard_section(selection: Selection, computed: dict, made: list, out: Path,
                        ignored: set[Path]) -> tuple[list[str], dict[str, str]]:
    """The leaderboards' Markdown lines and their HTML blocks ({name: html}, see markdown_to_html's raw)."""
    md, raw = ["## Leaderboard", "", LEADERBOARD_LEAD, ""], {}
    figures = {f.name: f for f in made}
    for _, split in SPLITS:
        md += [f"### {split}", ""]
        if split not in computed:
            md += [computed.get(("missing", split), f"No cells of split {split!r}."), ""]
            continue
        frame = leaderboard(selection, split, computed=computed[split])
        figure = figures.get(f"tradeoff-{split}")
        raw[f"board-{split}"] = leaderboard_html(frame, split, figure, out, ignored)
        md += [f"<!-- html:board-{split} -->", leaderboard_markdown(frame)]
        if isinstance(figure, Figure) and figure.png.resolve() not in ignored:
            md += [f"![{figure.name}]({figure.png.relative_to(out).as_posix()})", f"*{figure.caption}*", ""]
        md += ["<!-- /html -->", ""]
    return md + [LEADERBOARD_NOTE, ""], raw


# where the time goes ---------------------------------------------------------------------------------

def profile_section(store, out: Path, command: str, profiles: list[dict] | None = None,
                    costs: dict | None = None) -> tuple[list[str], list, list[Path]]:
    """"Where the time goes": the run profile (profile.csv, written here from the store's run profiles
    so the page shows what the file holds; without any, the profile.csv already in ``out``, as a
    committed report folder has it), as a table and a bar figure. (Markdown lines, figures, paths written.)"""
    if profiles is None:
        profiles = store.profiles() if store is not None else []
    md = ["## Where the time goes", ""]
    if profiles:
        path = write_profile(profiles, out, costs=costs)
        md += [f"Summed over the {len(profiles)} run profile(s) of the rows' origin ([{PROFILE_CSV}]({PROFILE_CSV})).", ""]
    elif (out / PROFILE_CSV).is_file():
        path = out / PROFILE_CSV
        md += [f"From [{PROFILE_CSV}]({PROFILE_CSV}) as found in the report folder (the result store holds no "
               "run profile).", ""]
    else:
        return md + ["No run profile: the result store holds none (runs made by an older version) and the report "
                     f"folder has no {PROFILE_CSV}.", ""], [], []
    frame = pd.read_csv(path)
    md += ["Wall time per stage of `bench run`, slowest first, beside its **floor**: the items the stage must "
           "process times the per-item cost of its model at its best batch size (embedding: forward; crafting: "
           "forward+backward through the source; alignment: MTCNN over the cores). An empty floor: no model in "
           "the stage (bookkeeping); the total's floor counts those at their measured time.", "",
           markdown_table(frame.rename(columns={"seconds": "wall (s)", "floor_s": "floor (s)",
                                                "ratio": "wall / floor"})), ""]
    figure = profile_bars(frame, out / "figures", command)
    md += [figures_markdown([figure], out)]
    written = [path] if profiles else []
    return md, [figure], written + (list(figure.files) if isinstance(figure, Figure) else [])


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
                   log=print, origin: str | None = None, dated: bool = True, kept: Path | None = None,
                   profiles: list[dict] | None = None, costs: dict | None = None
                   ) -> tuple[dict[str, str], list, list[Path]]:
    """The page's Markdown and HTML plus the side files it links to: ({file name: text}, figures, other
    paths written). Figures (and profile.csv) are written under ``out`` here; the text files are returned
    for the caller to write. ``origin`` names where the rows came from (default: the result store);
    ``dated``: say when (a page made from the records leaves it out, so the same records give the same
    page); ``kept``: see :func:`.figures.write_figures`; ``profiles``/``costs``: the run profiles and unit
    costs of "where the time goes" (default: the store's profiles and the costs they recorded)."""
    rows, budget, n_inference = selection.rows, selection.budget, selection.n_inference
    files: dict[str, str] = {}
    stamp = f" on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}" if dated else ""
    made = write_figures(selection, out / "figures", store=store, command=command, kept=kept)
    for f in made:
        if not isinstance(f, Figure):
            log(str(f))
    ignored = ignored_by_git([p for f in made if isinstance(f, Figure) for p in f.files])
    computed: dict = {}  # split -> interval_table's result, shared by the leaderboard and Table 1/2
    for number, split in SPLITS:
        if split not in set(rows["split"]):
            computed[("missing", split)] = f"No cells of split {split!r}."
            continue
        try:
            computed[split] = interval_table(selection, split)
        except ValueError as err:  # no cells at this budget / n_inference
            computed[("missing", split)] = f"{err}."
    md = ["# cloakbench report", "",
          f"Made by `{command}`{stamp}, from {len(rows)} result cells; L2 budget {budget:g}, "
          f"{n_inference} inference photos. Protection rates are percentages; intervals are 95% bootstrap "
          "intervals over identities.", ""]
    board, raw = leaderboard_section(selection, computed, made, out, ignored)
    origin = origin or (f"the result store `{_shown_path(store.root)}`" if store is not None else "the given rows")
    md += board + [origin_line(rows, origin), ""]
    profile_md, profile_figures, written = profile_section(store, out, command, profiles, costs)
    md += profile_md + ["## Provenance", "", provenance_markdown(rows)]
    for number, split in SPLITS:
        if split not in computed:
            md += [f"## Table {number}: {split}", "", computed[("missing", split)], ""]
            continue
        table, white, intervals = computed[split]
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
    md += ["## Figures", "", figures_markdown(made, out)]
    files[PAGE_MD] = re.sub(r"\n{3,}", "\n\n", "\n".join(md))
    files[PAGE_HTML] = markdown_to_html(files[PAGE_MD], "cloakbench report", raw=raw, script=SORT_SCRIPT)
    return files, made + profile_figures, written


def write_page(selection: Selection, out: Path, store=None, command: str = "bench report", log=print,
               origin: str | None = None, dated: bool = True, kept: Path | None = None,
               profiles: list[dict] | None = None, costs: dict | None = None) -> list[Path]:
    """Leaderboards, profile, interval tables, claims, paper comparison, figures and the page, into
    ``out``; the paths written (figures and profile.csv included), ``index.html`` last."""
    out = Path(out)
    files, made, written = build_sections(selection, out, store, command, log, origin, dated, kept, profiles, costs)
    paths = [p for f in made if isinstance(f, Figure) for p in f.files]
    paths += [p for p in written if p not in paths]
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
