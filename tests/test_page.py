"""The report page (reports/index.md, index.html) from `bench report` on a small real run, checked as
parsed HTML always, its sorting rule under node where node is installed, and in a real headless browser
(sorting by every column, every image loaded, no console error) where one is installed."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import webbrowser
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.reporting.page import open_page
from bench.reporting.paper import comparison, load_paper
from bench.reporting.selection import Selection
from report_run import SOURCE, real_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
SELECTED: dict[str, list] = {"selections": [], "subsets": []}  # what the `report` fixture's run selected


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`bench report --open` on the real run's store, a browser that cannot open: (folder, output, opened URIs)."""
    run = real_run()
    out = tmp_path_factory.mktemp("reports")
    opened = []
    init, select_cells, figure_cells = Selection.__init__, Selection._select, Selection._figure_cells
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_SPLITS", str(run.splits))
        mp.setattr(webbrowser, "open", lambda uri, *a, **k: opened.append(uri) or False)
        mp.setattr(Selection, "__init__", lambda self, *a, **k: SELECTED["selections"].append(a[1:]) or init(self, *a, **k))
        mp.setattr(Selection, "_select", lambda self, split, paper: SELECTED["subsets"].append(("cells", split, paper))
                   or select_cells(self, split, paper))
        mp.setattr(Selection, "_figure_cells", lambda self, split: SELECTED["subsets"].append(("figure", split))
                   or figure_cells(self, split))
        r = CliRunner().invoke(main, ["report", "--results", str(run.results), "--out", str(out), "--open"])
    assert r.exit_code == 0, r.output
    return out, r.output, opened, run


def test_report_writes_the_page_prints_its_path_and_opens_it(report):
    out, output, opened, run = report
    page = out / "index.html"
    assert f"report page: {page}" in output
    assert opened == [page.resolve().as_uri()] and "no browser available" in output
    md = (out / "index.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Leaderboard", "## Where the time goes", "## Provenance"], "the page opens with the answer"
    for heading in ("## Table 2: commons", "## Claims", "## Paper vs this benchmark", "## Figures"):
        assert heading in headings
    commit = run.rows[0]["provenance"]["commit"]
    assert f"`{commit}` ({len(run.rows)} cells)" in md
    assert run.rows[0]["provenance"]["device"] in md and f"torch {run.rows[0]['provenance']['versions']['torch']}" in md
    assert f"bench report --results {run.results} --out {out}" in md, "the page says which command made it"
    assert "advcloak-convex" in (out / "claims.md").read_text()
    assert (out / "table2_commons_ci.md").read_text() in md
    for name in ("tradeoff-commons", "inference-commons", "targets-commons", f"masks-commons-{SOURCE}"):
        assert f"![{name}](figures/{name}.png)" in md


def test_a_report_selects_its_rows_once(report):
    """One selection per report, and each subset of it (a split's table cells, all its cells, its figure
    lines) filtered once and shared by every table, claim, figure and the page."""
    assert SELECTED["selections"] == [(1200.0, 10)], "bench report makes one Selection, at its budget"
    subsets = SELECTED["subsets"]
    assert {("cells", "commons", True), ("cells", "commons", False), ("figure", "commons")} <= set(subsets)
    assert len(subsets) == len(set(subsets)), f"a subset was selected more than once: {subsets}"


class Targets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.tags, self.ids, self.scripts = [], [], [], set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src"))
        elif tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "script":
            self.scripts.append(attrs)


def test_every_image_and_link_of_the_page_resolves(report):
    out = report[0]
    parser = Targets()
    parser.feed((out / "index.html").read_text())
    assert parser.tags[:1] == ["html"] and "table" in parser.tags
    assert parser.scripts == [{}], "one inline script (the leaderboard's sorting), nothing loaded from elsewhere"
    # the 4 figures, the trade-off figure again beside the leaderboard, and the profile's bars
    assert len(parser.images) == 6 and all(src and not urlparse(src).scheme for src in parser.images)
    for src in parser.images:
        with Image.open(out / src) as img:
            img.verify()
    assert len(parser.links) >= 4 + 4 + 2  # tables' files, figures' PDFs, profile.csv and the profile's PDF
    for href in parser.links:
        assert not urlparse(href).scheme, f"{href}: the page links only to its own files"
        if href.startswith("#"):
            assert href[1:] in parser.ids, f"{href}: no such heading on the page"
        else:
            assert (out / unquote(href)).is_file(), f"{href} does not exist"


def local_targets(page) -> list[str]:
    """Every src and href of an HTML page that points at a file (no scheme, not an in-page anchor)."""
    parser = Targets()
    parser.feed(page.read_text())
    return [t for t in parser.images + parser.links if t and not urlparse(t).scheme and not t.startswith("#")]


def test_the_committed_page_links_only_files_a_fresh_clone_has():
    """reports/index.html as committed: every image and link must be a file in git, not merely one that
    `bench report` left on this machine (.gitignore keeps the mask grids' PDFs and the commons grids out)."""
    from bench.paths import repo_root

    reports = repo_root() / "reports"
    targets = local_targets(reports / "index.html")
    assert targets, "the committed page links its tables and figures"
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=reports, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the files that would be committed cannot be told apart")
    committed = {p.decode() for p in listed.split(b"\0") if p}
    dead = [t for t in targets if unquote(t) not in committed]
    assert not dead, f"reports/index.html points a fresh clone at files that are not in git: {dead}"


def test_files_git_ignores_are_named_on_the_page_not_linked(tmp_path):
    from bench.reporting.figures import Figure, Skipped
    from bench.reporting.page import figures_markdown, ignored_by_git
    from bench.reporting.render import markdown_to_html

    if subprocess.run(["git", "init", "-q", str(tmp_path)], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    (tmp_path / ".gitignore").write_text("figures/masks-*.pdf\nfigures/masks-commons-*\n")
    figures = tmp_path / "figures"
    figures.mkdir()
    made = []
    for name in ("targets-commons", "masks-celebrities-x", "masks-commons-x"):
        files = [figures / f"{name}.png", figures / f"{name}.pdf"]
        for f in files:
            f.write_bytes(b"")
        made.append(Figure(name, f"caption of {name}.", "bench report", files))
    made.append(Skipped("tradeoff-commons", "no budgets"))
    assert ignored_by_git([f for m in made[:3] for f in m.files]) == {
        (figures / n).resolve() for n in ("masks-celebrities-x.pdf", "masks-commons-x.png", "masks-commons-x.pdf")}
    md = figures_markdown(made, tmp_path)
    assert "![targets-commons](figures/targets-commons.png)" in md and "[PDF](figures/targets-commons.pdf)" in md
    assert "![masks-celebrities-x](figures/masks-celebrities-x.png)" in md
    assert "masks-celebrities-x.pdf" not in md, "an ignored PDF is not linked"
    assert "![masks-commons-x]" not in md and "`figures/masks-commons-x.png`" in md, "an ignored PNG is named only"
    assert "- tradeoff-commons: no budgets" in md
    (tmp_path / "index.html").write_text(markdown_to_html(md, "t"))
    assert sorted(local_targets(tmp_path / "index.html")) == [
        "figures/masks-celebrities-x.png", "figures/targets-commons.pdf", "figures/targets-commons.png"]
    # outside any git work tree every file is linked
    assert ignored_by_git([figures / "masks-commons-x.png"]) and not ignored_by_git([Path("/") / "masks-x.pdf"])


def test_open_never_fails_without_a_browser(monkeypatch, tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<!DOCTYPE html><html></html>")

    def broken(*a, **k):
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "open", broken)
    assert "could not open a browser" in open_page(page) and str(page) in open_page(page)
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: True)
    assert open_page(page) == f"opened {page.resolve().as_uri()}"


def test_paper_vs_ours_puts_the_paper_beside_our_paired_verdicts(report):
    out, _, _, run = report
    rows = pd.DataFrame(list(run.rows))
    paper = load_paper()
    result = comparison(rows)
    table = result["tables"]["commons"]
    commons = paper[paper["table"] == "T1_PrivacyCommons"]
    assert table.loc["opom-convex", "paper Top-1"] == pytest.approx(
        commons.loc[commons["method"] == "OPOM-ConvexHull", "Avg_top1"].mean(), abs=0.05)
    assert table.loc["gap", "paper rank"] == 10 and pd.isna(table.loc["gap", f"ours {SOURCE} rank"])
    claims = {c["claim"]: c for c in result["claims"]}
    assert set(claims) == {"advcloak-convex > opom-convex", "opom-convex > fi-uap"}
    assert claims["advcloak-convex > opom-convex"]["paper holds in"] == "3/3"
    for c in claims.values():
        low, high = (float(x) for x in c["our gap [95% CI]"].split("[")[1].rstrip("]").split(","))
        assert c["verdict"] == ("reproduced" if low > 0 else "not reproduced" if high < 0 else "not resolved")
    # a paper with the opposite numbers turns the claim around, and with it the verdict
    flipped = paper.copy()
    convex = flipped["method"] == "OPOM-ConvexHull"
    flipped.loc[convex, "Avg_top1"] = 99.0
    turned = {c["claim"]: c for c in comparison(rows, paper=flipped)["claims"]}
    assert "opom-convex > advcloak-convex" in turned
    ours = claims["advcloak-convex > opom-convex"]["verdict"]
    assert turned["opom-convex > advcloak-convex"]["verdict"] == {"reproduced": "not reproduced",
                                                                  "not reproduced": "reproduced"}.get(ours, ours)
    assert "Not measured here" in (out / "paper_vs_ours.md").read_text()


# a real browser over the DevTools protocol (pipe transport: no port, no extra package) ------------------

def browser_binary() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def load_in_browser(browser: str, url: str, timeout: float = 60.0, then: str | None = None) -> dict:
    """Load ``url`` headless; return its images ([src, complete, naturalWidth]), links, title, what the
    JavaScript expression ``then`` (run after the load, e.g. clicks) returns as ``then``, and the
    console/log errors and uncaught exceptions seen while loading and running it."""
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    child_r, child_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 100), fcntl.fcntl(res_w, fcntl.F_DUPFD, 100)
    os.close(cmd_r), os.close(res_w)
    profile = tempfile.mkdtemp(prefix="bench-browser-")

    def child_fds():  # the DevTools pipe: the browser reads fd 3 and writes fd 4
        os.dup2(child_r, 3)
        os.dup2(child_w, 4)

    proc = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
                            pass_fds=(3, 4), preexec_fn=child_fds, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(child_r), os.close(child_w)
    deadline, buffer, events, counter = time.monotonic() + timeout, b"", [], iter(range(1, 1 << 30))

    def send(method, params=None, session=None):
        msg_id = next(counter)
        msg = {"id": msg_id, "method": method, "params": params or {}, **({"sessionId": session} if session else {})}
        os.write(cmd_w, json.dumps(msg).encode() + b"\0")
        return msg_id

    def until(predicate):
        nonlocal buffer
        while True:
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    events.append(msg)
                if predicate(msg):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{browser} did not answer within {timeout:g} s")
            if select.select([res_r], [], [], left)[0]:
                chunk = os.read(res_r, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"{browser} closed the DevTools pipe")
                buffer += chunk

    def call(method, params=None, session=None):
        msg_id = send(method, params, session)
        msg = until(lambda m: m.get("id") == msg_id)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    try:
        page = next(t for t in call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            call(f"{domain}.enable", session=session)
        call("Page.navigate", {"url": url}, session=session)
        until(lambda m: m.get("method") == "Page.loadEventFired")
        expr = ("JSON.stringify({title: document.title, links: Array.from(document.links).map(a => a.href), "
                "images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])})")
        state = json.loads(call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)["result"]["value"])
        if then is not None:
            done = call("Runtime.evaluate", {"expression": then, "returnByValue": True}, session=session)
            state["then"] = done["result"].get("value") if "exceptionDetails" not in done else None
        time.sleep(0.2)
        call("Runtime.evaluate", {"expression": "0"}, session=session)  # collects events still in flight
        errors = []
        for e in events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text"))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(json.dumps(p.get("args")))
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        return {**state, "errors": errors}
    finally:
        try:
            send("Browser.close")
        except OSError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(cmd_w), os.close(res_r)
        shutil.rmtree(profile, ignore_errors=True)


def test_the_page_loads_in_a_headless_browser_with_every_image_and_no_error(report, tmp_path):
    browser = browser_binary()
    if browser is None:
        pytest.skip("no Chromium/Chrome binary on PATH (Debian: apt-get install chromium); "
                    "test_every_image_and_link_of_the_page_resolves still checks the page's files")
    out = report[0]
    state = load_in_browser(browser, (out / "index.html").resolve().as_uri(), then=CLICK_EVERY_HEADER_TWICE)
    assert state["title"] == "cloakbench report"
    assert len(state["images"]) == 6
    for src, complete, width in state["images"]:
        assert complete and width > 0, f"{src} did not render"
    assert state["errors"] == []
    check_sorted_by_clicks(json.loads(state["then"]), leaderboards(out / "index.html"))
    # the checks can fail: the same page with one figure missing, and without its script (so it sorts nothing)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "figures" / "targets-commons.png").unlink()
    page = broken / "index.html"
    page.write_text(page.read_text().replace(page_script(page), ""))
    state = load_in_browser(browser, page.resolve().as_uri(), then=CLICK_EVERY_HEADER_TWICE)
    assert [src for src, _, width in state["images"] if width == 0] == ["figures/targets-commons.png"]
    assert any("targets-commons.png" in e for e in state["errors"])
    with pytest.raises(AssertionError):
        check_sorted_by_clicks(json.loads(state["then"]), leaderboards(page))


def test_figure_commands_name_folders_as_typed_from_the_working_directory(tmp_path, monkeypatch):
    from bench.reporting.report import as_typed as _as_typed

    monkeypatch.chdir(tmp_path)
    assert _as_typed(tmp_path / "reports") == "reports"  # no machine's absolute folder in committed figures
    assert _as_typed(Path("results")) == "results"
    outside = tmp_path.parent / "elsewhere"
    assert _as_typed(outside) == str(outside.resolve())


# the leaderboard ----------------------------------------------------------------------------------------

class Leaderboards(HTMLParser):
    """The page's sortable tables: per table, its headers (button text, aria-sort, data-first) and rows
    (per cell: text, data-sort, whether marked best), and the images inside each leaderboard's box."""

    def __init__(self):
        super().__init__()
        self.tables, self.board_images, self._cell, self._depth, self._inside = [], [], None, 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("class") == "board":
            self._depth = 1
        elif tag == "div" and self._depth:
            self._depth += 1
        if tag == "table" and attrs.get("class") == "sortable":
            self.tables.append({"head": [], "rows": []})
            self._inside = True
        elif not self._inside:
            if tag == "img" and self._depth:
                self.board_images.append(attrs.get("src"))
        elif tag == "th":
            self.tables[-1]["head"].append({"text": "", "aria-sort": attrs.get("aria-sort"), "first": attrs.get("data-first")})
            self._cell = self.tables[-1]["head"][-1]
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag == "td":
            self.tables[-1]["rows"][-1].append({"text": "", "sort": attrs.get("data-sort"), "best": attrs.get("class") == "best"})
            self._cell = self.tables[-1]["rows"][-1][-1]

    def handle_endtag(self, tag):
        if tag == "table":
            self._inside = False
        elif tag in ("th", "td"):
            self._cell = None
        elif tag == "div" and self._depth:
            self._depth -= 1
        elif tag == "tr" and self.tables and self.tables[-1]["rows"] and not self.tables[-1]["rows"][-1]:
            self.tables[-1]["rows"].pop()  # the header row

    def handle_data(self, data):
        if self._cell is not None and not data.startswith(" (best)"):
            self._cell["text"] += data


def leaderboards(page: Path) -> Leaderboards:
    parser = Leaderboards()
    parser.feed(page.read_text())
    return parser


def markdown_table_rows(text: str) -> list[dict[str, str]]:
    """The first Markdown table in ``text`` as a list of {column: cell}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    head = [c.strip() for c in lines[start].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in line.strip("|").split("|")))) for line in lines[start + 2:end]]


def markdown_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """A Markdown Table 1/2 as {(source, method): {column: cell}}."""
    return {(r["source"], r["method"]): r for r in markdown_table_rows(text)}


def test_the_page_opens_with_a_sortable_leaderboard_per_split_that_matches_table_2(report):
    out, _, _, run = report
    md = (out / "index.md").read_text()
    before_provenance = md.split("## Provenance")[0]
    assert "### celebrities" in before_provenance and "No cells of split 'celebrities'." in before_provenance
    assert "### commons" in before_provenance and "![tradeoff-commons](figures/tradeoff-commons.png)" in before_provenance
    commit = run.rows[0]["provenance"]["commit"]
    assert f"Numbers from {len(run.rows)} result cells of the result store `{run.results}`, all made at commit " \
           f"`{commit.removesuffix('-dirty')}`" in before_provenance, "one line says where the numbers came from"
    page = leaderboards(out / "index.html")
    assert len(page.tables) == 1, "a leaderboard per split with cells (commons only in this run)"
    assert page.board_images == ["figures/tradeoff-commons.png"], "the trade-off figure beside it"
    table = page.tables[0]
    assert [h["text"] for h in table["head"]] == ["method", "source", "black-box Top-1 [95% CI]", "white-box Top-1",
                                                  "SSIM", "t1 (s/person)"]
    assert [h["aria-sort"] for h in table["head"]] == [None, None, "descending", None, None, None]
    # the same numbers as Table 2 (its Average Top-1 with its interval, the white-box target's Top-1), every row
    # but clean accuracy and `none`
    table2 = markdown_rows((out / "table2_commons_ci.md").read_text())
    expected = {k: r for k, r in table2.items() if k[1] not in ("(no mask)", "none")}
    shown = {(r[1]["text"], r[0]["text"]): r for r in table["rows"]}
    assert set(shown) == set(expected) and len(table["rows"]) == len(expected) == 4  # noise, fi-uap, opom, advcloak
    for key, cells in shown.items():
        assert cells[2]["text"] == expected[key]["Average Top-1"]
        white = expected[key]["mobileface Top-1"]
        assert cells[3]["text"] == (white.split(" [")[0] if white.endswith("*") else "-")
    keys = [float(r[2]["sort"]) for r in table["rows"]]
    assert keys == sorted(keys, reverse=True), "best black-box protection first"
    # SSIM and t1: the mean over each row's cells at the report's budget and inference photos
    cells = pd.DataFrame(list(run.rows))
    cells = cells[(cells["budget"] == 1200.0) & cells["n_inference"].isin([0, 10])]
    for (source, method), row in shown.items():
        mine = cells[(cells["source"] == source) & (cells["method"] == method)]
        assert float(row[4]["sort"]) == pytest.approx(mine["ssim"].mean(), abs=1e-5)
        t1 = mine["t1"].dropna()
        if t1.empty:
            assert row[5]["sort"] == "" and row[5]["text"] == "-"
        else:
            assert float(row[5]["sort"]) == pytest.approx(t1.mean(), rel=1e-5)
    # the best of each column among the methods (noise is the reference) is marked, and only it
    methods_only = [r for r in table["rows"] if r[1]["text"] != "-"]
    for col, best_is in ((2, max), (3, max), (4, max), (5, min)):
        values = [float(r[col]["sort"]) for r in methods_only if r[col]["sort"]]
        marked = [r[col]["text"] for r in table["rows"] if r[col]["best"]]
        assert marked and all(float(r[col]["sort"]) == best_is(values) for r in table["rows"] if r[col]["best"])
        assert not any(r[col]["best"] for r in table["rows"] if r[1]["text"] == "-")
    assert "**" in md.split("### commons")[1].split("## Provenance")[0], "the Markdown marks the best in bold too"


def test_where_the_time_goes_shows_the_run_profile(report):
    out, _, _, run = report
    md = (out / "index.md").read_text()
    section = md.split("## Where the time goes")[1].split("## Provenance")[0]
    profile = pd.read_csv(out / "profile.csv")
    assert "[profile.csv](profile.csv)" in section and "![profile](figures/profile.png)" in section
    shown = markdown_table_rows(section)
    assert [r["stage"] for r in shown] == list(profile["stage"]), "every stage, in the file's order"
    assert shown[-1]["wall (s)"] == f"{profile['seconds'].iloc[-1]:.1f}"
    assert profile["stage"].iloc[-1] == "total" and "craft:opom-convex@mobileface" in set(profile["stage"])
    with Image.open(out / "figures" / "profile.png") as img:
        assert img.size[0] > 300


def test_without_run_profiles_the_page_shows_the_profile_csv_of_the_report_folder(report, tmp_path):
    """A report folder made from committed rows (no result store with run profiles) keeps its profile.csv."""
    from bench.reporting.page import profile_section
    from bench.store import ResultStore

    shutil.copy(report[0] / "profile.csv", tmp_path / "profile.csv")
    md, figures, written = profile_section(ResultStore(tmp_path / "empty-store"), tmp_path, "bench report")
    assert "as found in the report folder" in "\n".join(md) and "| total |" in "\n".join(md)
    assert written == [figures[0].png, figures[0].files[1]] and figures[0].png.is_file()
    md, figures, written = profile_section(ResultStore(tmp_path / "empty-store"), tmp_path / "nothing", "bench report")
    assert "No run profile" in "\n".join(md) and figures == [] and written == []


def page_script(page: Path) -> str:
    text = page.read_text()
    return text.split("<script>", 1)[1].split("</script>", 1)[0]


def test_the_sorting_rule_under_node(report, tmp_path):
    """The page's own script, run by node without a DOM: numbers sort as numbers, text as text, empty cells
    last in both directions, ties keep their order."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the browser test sorts the real page")
    keys = [r[2]["sort"] for r in leaderboards(report[0] / "index.html").tables[0]["rows"]]
    cases = {"numbers": (["3", "10", "", "2.5"], True), "numbers down": (["3", "10", "", "2.5"], False),
             "text": (["b", "a", "", "C"], True), "ties": (["1", "1", "0"], False), "page": (keys[::-1], False)}
    harness = tmp_path / "sort.js"
    harness.write_text(page_script(report[0] / "index.html") + "\nconst cases = " + json.dumps(cases) + ";\n"
                       "const out = {};\nfor (const [name, [keys, up]] of Object.entries(cases)) "
                       "out[name] = module.exports.order(keys, up);\nconsole.log(JSON.stringify(out));\n")
    done = subprocess.run([node, str(harness)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    got = json.loads(done.stdout)
    assert got["numbers"] == [3, 0, 1, 2] and got["numbers down"] == [1, 0, 3, 2]
    assert got["text"] == [1, 0, 3, 2] and got["ties"] == [0, 1, 2]
    assert got["page"] == list(range(len(keys)))[::-1]


# clicks every header of every sortable table twice; per table, per header, per click: the headers'
# aria-sort and the column's data-sort keys and the rows (method|source) in the order shown
CLICK_EVERY_HEADER_TWICE = """JSON.stringify(Array.from(document.querySelectorAll("table.sortable")).map(function (table) {
  var head = Array.from(table.tHead.rows[0].cells);
  return head.map(function (th, i) {
    return [0, 1].map(function () {
      th.querySelector("button").click();
      return {sorts: head.map(function (h) { return h.getAttribute("aria-sort"); }),
              keys: Array.from(table.tBodies[0].rows).map(function (r) { return r.cells[i].dataset.sort; }),
              rows: Array.from(table.tBodies[0].rows).map(function (r) { return r.cells[0].textContent + "|" + r.cells[1].textContent; })};
    });
  });
}))"""


def check_sorted_by_clicks(clicked: list, page: Leaderboards) -> None:
    assert len(clicked) == len(page.tables) >= 1
    for table, per_header in zip(page.tables, clicked):
        before = sorted(r[0]["text"] + "|" + r[1]["text"] for r in table["rows"])
        sorts = [h["aria-sort"] for h in table["head"]]  # as the page opens
        flip = {"ascending": "descending", "descending": "ascending"}
        for i, (header, clicks) in enumerate(zip(table["head"], per_header)):
            for click in clicks:
                # a click reverses the column's order, or sorts a column not sorted yet its own first way
                direction = flip[sorts[i]] if sorts[i] else header["first"]
                sorts = [direction if j == i else None for j in range(len(sorts))]
                assert click["sorts"] == sorts, (header["text"], click["sorts"])
                assert sorted(click["rows"]) == before, "sorting moves rows, it loses or copies none"
                filled = [k for k in click["keys"] if k]
                assert click["keys"] == filled + [""] * (len(click["keys"]) - len(filled)), "empty cells last"
                numeric = all(k.replace(".", "", 1).replace("-", "", 1).replace("e", "", 1).isdigit() for k in filled)
                values = [float(k) for k in filled] if numeric else [k.lower() for k in filled]
                assert values == sorted(values, reverse=direction == "descending"), (header["text"], direction, values)


def test_a_raw_html_block_replaces_its_markdown_in_the_html_only():
    from bench.reporting.render import markdown_to_html

    md = "# t\n\n<!-- html:board -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /html -->\n\nafter\n"
    page = markdown_to_html(md, "t", raw={"board": '<div class="board">sortable</div>'}, script="var x = 1;")
    assert '<div class="board">sortable</div>' in page and "<td>1</td>" not in page and "<p>after</p>" in page
    assert page.count("<script>") == 1 and "var x = 1;" in page
    plain = markdown_to_html(md, "t")  # no HTML for the block: its Markdown is shown, the comments are not
    assert "<td>1</td>" in plain and "html:board" not in plain and "<script>" not in plain


def test_the_best_of_each_column_counts_ties_and_leaves_out_the_baselines_on_a_hand_made_frame():
    from bench.reporting.claims import BLACK_BOX, SSIM, T1, WHITE_BOX, leaderboard_best

    frame = pd.DataFrame([
        {"method": "noise", "source": "-", "kind": "baseline", BLACK_BOX: 90.0, WHITE_BOX: float("nan"), SSIM: 0.99, T1: 0.001},
        {"method": "a", "source": "s", "kind": "method", BLACK_BOX: 50.0, WHITE_BOX: 80.0, SSIM: 0.9, T1: 2.0},
        {"method": "b", "source": "s", "kind": "method", BLACK_BOX: 50.0, WHITE_BOX: 70.0, SSIM: 0.8, T1: float("nan")},
        {"method": "c", "source": "t", "kind": "method", BLACK_BOX: 40.0, WHITE_BOX: 90.0, SSIM: 0.95, T1: 0.5},
    ])
    assert leaderboard_best(frame) == {BLACK_BOX: {1, 2}, WHITE_BOX: {3}, SSIM: {3}, T1: {3}}
