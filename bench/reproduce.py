"""``bench report`` from the records or from a result store, and ``bench report --check``.

Two sources of rows: the **records** (``results/records/``, committed: :mod:`bench.records`) and a **result
store** (``results/``, a machine's own runs). ``bench report`` uses the store when it holds cells and the
records otherwise (a fresh clone), and always says which; ``--from`` chooses. A report from the records is
the committed one: every table, interval, claim, figure without masks, ``profile.csv`` and the page are
rebuilt from the records alone, the page carries no clock time, and the visual grids (which need the
masks, kept only in a store) are left as the reports folder has them. The bench:table blocks of the
README and docs/ are filled from the records too (:mod:`bench.reporting.doctables`).

``--check`` rebuilds all of that into a temporary folder and compares it with the committed reports and
documents, byte for byte for the text files (CSV, LaTeX, Markdown, HTML, JSON); figures (PNG, PDF) are
rendered by the machine's fonts and libraries, so only their presence is checked.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import BenchError
from .paths import repo_root, reports_dir, work_dir
from .records import RecordStore
from .store import ResultStore

ORIGINS = ("records", "results")
TEXT_SUFFIXES = {".csv", ".tex", ".md", ".html", ".json", ".txt"}
FIGURE_SUFFIXES = {".png", ".pdf"}
RECORDS_COMMAND = "bench report --from records"
RECORDS_ORIGIN = "the committed records (`results/records`)"  # the same words wherever the report is built or checked


@dataclass
class ReportInput:
    origin: str  # "records" or "results"
    where: Path  # the records folder or the result store
    rows: list[dict]
    profiles: list[dict]
    costs: dict | None  # unit costs for profile.csv (records keep them; a store's are measured if missing)
    store: ResultStore  # where the visual grids' masks are looked for

    def describe(self) -> str:
        return f"report from {self.origin}: {self.where} ({len(self.rows)} cells)"


def has_cells(store: ResultStore) -> bool:
    return store.cells.is_dir() and any(store.cells.glob("*.json"))


def choose(origin: str | None = None, results: Path | None = None, records: Path | None = None) -> ReportInput:
    """The rows to report: ``origin`` 'records' or 'results', default the store when it is named or has
    cells, else the records. From the records, ``results`` is where the visual grids' masks are looked for."""
    store = ResultStore(results) if results else ResultStore()
    if origin is None:  # a store named on the command line is meant, even when empty
        origin = "results" if results or has_cells(store) else "records"
    if origin == "results":
        rows = store.rows()
        if not rows:
            raise BenchError(f"the result store {store.root} is empty: run `bench run` first, or report from the "
                             "committed records (bench report --from records)")
        return ReportInput("results", store.root, rows, store.profiles(), None, store)
    if origin != "records":
        raise BenchError(f"--from takes {' or '.join(ORIGINS)}, got {origin!r}")
    rec = RecordStore(records)
    rows = rec.rows()
    if not rows:
        raise BenchError(f"no records in {rec.root} and no cells in {store.root}: run `bench run`, or write records "
                         "with `bench records export`")
    return ReportInput("records", rec.root, rows, rec.profiles(), rec.unit_costs(), store)


def records_command(budget: float, n_inference: int) -> str:
    """What a page made from the records names as its maker: the same wherever it is written, so that the
    check's copy in a temporary folder reads as the committed one."""
    from .reporting.selection import DEFAULT_BUDGET, DEFAULT_N_INFERENCE

    extra = f" --budget {budget:g}" if budget != DEFAULT_BUDGET else ""
    extra += f" --n-inference {n_inference}" if n_inference != DEFAULT_N_INFERENCE else ""
    return RECORDS_COMMAND + extra


def documents(root: Path | None = None) -> list[Path]:
    """README.md and docs/**/*.md under ``root`` (default: the working directory) holding bench:table blocks."""
    from .reporting.doctables import has_tables

    root = Path(root) if root else work_dir()
    found = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    return [p for p in found if p.is_file() and has_tables(p.read_text())]


def generate(source: ReportInput, out: Path, budget: float, n_inference: int, *, docs: list[Path] = (),
             kept: Path | None = None, command: str | None = None, log=print) -> list[Path]:
    """Every report file from ``source`` into ``out``. From the records: no clock time on the page, the
    visual grids left as ``kept`` (default: ``out/figures``) has them where the masks are absent, and
    ``docs``' bench:table blocks filled; from a store, as ``bench run --report`` writes them."""
    from .reporting import write_reports

    if source.origin == "records":
        # built where the checkout's .gitignore judges it as in reports/, then copied: the page names the files
        # git keeps out without linking them, and must do so alike wherever it is written or checked
        with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
            build = Path(tmp) / "reports"
            as_repository(Path(tmp))
            built = write_reports(source.rows, build, budget, n_inference, results=source.store, log=log,
                                  command=command or records_command(budget, n_inference), dated=False,
                                  kept=kept or out / "figures", docs=docs, origin=RECORDS_ORIGIN,
                                  profiles=source.profiles, costs=source.costs)
            for path in sorted(p for p in build.rglob("*") if p.is_file()):
                target = out / path.relative_to(build)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            return [out / p.relative_to(build) if p.is_relative_to(build) else p for p in built]
    return write_reports(source.rows, out, budget, n_inference, results=source.store, log=log, command=command,
                         profiles=source.profiles)


# the check ------------------------------------------------------------------------------------------

@dataclass
class Difference:
    path: Path
    line: int | None  # 1-based; None: the file is missing
    committed: str = ""
    expected: str = ""

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: missing (the records give it; run `{RECORDS_COMMAND}`)"
        return (f"{self.path}:{self.line}: differs from what the records give\n  committed: {self.committed[:200]}\n"
                f"  records:   {self.expected[:200]}")


def first_difference(committed: Path, expected: Path) -> Difference | None:
    if not committed.exists():
        return Difference(committed, None)
    a, b = committed.read_bytes(), expected.read_bytes()
    if a == b:
        return None
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "(end of file)"
        y = lb[i] if i < len(lb) else "(end of file)"
        if x != y:
            return Difference(committed, i + 1, x, y)
    return Difference(committed, len(la), "(line endings differ)", "")


def as_repository(folder: Path) -> None:
    """Make ``folder`` a git work tree with the checkout's .gitignore: the page names the files git keeps
    out of the repository without linking them, and it must judge them as it does in the checkout."""
    ignore = repo_root() / ".gitignore"
    if ignore.exists():
        shutil.copyfile(ignore, folder / ".gitignore")
    try:
        subprocess.run(["git", "init", "-q", str(folder)], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pass  # no git: the committed page was then made without it too


def check(records: Path | None = None, reports: Path | None = None, docs: list[Path] | None = None,
          budget: float = 1200.0, n_inference: int = 10, log=print) -> list[Difference] | None:
    """Rebuild the reports from the records in a temporary folder and compare them with ``reports``
    (default: reports/ or BENCH_REPORTS) and ``docs`` (default: :func:`documents`); the differences, first
    line of each file (empty: all agree; None: there are no records to check)."""
    from .reporting.page import ignored_by_git

    rec = RecordStore(records)
    reports = Path(reports) if reports else reports_dir()
    docs = documents() if docs is None else list(docs)
    if not rec:
        log(f"no records in {rec.root}: nothing to check (`bench records export` writes them)")
        return None
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        tmp = Path(tmp)
        copies = {}
        for i, doc in enumerate(docs):
            copies[doc] = tmp / "docs" / str(i) / doc.name
            copies[doc].parent.mkdir(parents=True)
            shutil.copyfile(doc, copies[doc])
        source = ReportInput("records", rec.root, rec.rows(), rec.profiles(), rec.unit_costs(),
                             ResultStore(tmp / "no-results"))  # never a local store's masks: only what is committed
        out = tmp / "reports"
        log(source.describe() + f"; checking {reports}" + (f" and {len(docs)} document(s)" if docs else ""))
        generate(source, out, budget, n_inference, docs=list(copies.values()), kept=reports / "figures",
                 command=records_command(budget, n_inference), log=lambda line: None)
        made = sorted(p for p in out.rglob("*") if p.is_file())
        figures = [p for p in made if p.suffix in FIGURE_SUFFIXES]
        as_repository(tmp)  # which figures git keeps out, judged as in the checkout's reports/
        ignored = ignored_by_git(figures)
        found = []
        for path in made:
            committed = reports / path.relative_to(out)
            if path.suffix in TEXT_SUFFIXES:
                diff = first_difference(committed, path)
                if diff:
                    found.append(diff)
            elif path.suffix in FIGURE_SUFFIXES and path.resolve() not in ignored and not committed.exists():
                found.append(Difference(committed, None))
        for doc, copy in copies.items():
            diff = first_difference(doc, copy)
            if diff:
                found.append(diff)
        log(f"compared {sum(p.suffix in TEXT_SUFFIXES for p in made) + len(copies)} text files byte for byte and "
            f"{len(figures)} figure files by presence (PNG/PDF bytes depend on the machine's fonts and libraries)")
    return found
