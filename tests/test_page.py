"""The report page (reports/index.md, index.html) from `bench report` on a small real run, checked as
parsed HTML always and in a real headless browser where one is installed."""

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
    for heading in ("## Provenance", "## Table 2: commons", "## Claims", "## Paper vs this benchmark", "## Figures"):
        assert heading in md
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
        self.images, self.links, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src"))
        elif tag == "a":
            self.links.append(attrs.get("href"))


def test_every_image_and_link_of_the_page_resolves(report):
    out = report[0]
    parser = Targets()
    parser.feed((out / "index.html").read_text())
    assert parser.tags[:1] == ["html"] and "table" in parser.tags and "script" not in parser.tags
    assert len(parser.images) == 4 and all(src and not urlparse(src).scheme for src in parser.images)
    for src in parser.images:
        with Image.open(out / src) as img:
            img.verify()
    assert len(parser.links) >= 4 + 4  # the tables' CSV/LaTeX/Markdown files and each figure's PDF
    for href in parser.links:
        assert not urlparse(href).scheme, f"{href}: the page links only to its own files"
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


def load_in_browser(browser: str, url: str, timeout: float = 60.0) -> dict:
    """Load ``url`` headless; return its images ([src, complete, naturalWidth]), links, title and the
    console/log errors and uncaught exceptions seen while loading."""
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
    state = load_in_browser(browser, (out / "index.html").resolve().as_uri())
    assert state["title"] == "cloakbench report"
    assert len(state["images"]) == 4
    for src, complete, width in state["images"]:
        assert complete and width > 0, f"{src} did not render"
    assert state["errors"] == []
    # the check can fail: the same page with one figure missing
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "figures" / "targets-commons.png").unlink()
    state = load_in_browser(browser, (broken / "index.html").resolve().as_uri())
    assert [src for src, _, width in state["images"] if width == 0] == ["figures/targets-commons.png"]
    assert any("targets-commons.png" in e for e in state["errors"])


def test_figure_commands_name_folders_as_typed_from_the_working_directory(tmp_path, monkeypatch):
    from bench.reporting.report import as_typed as _as_typed

    monkeypatch.chdir(tmp_path)
    assert _as_typed(tmp_path / "reports") == "reports"  # no machine's absolute folder in committed figures
    assert _as_typed(Path("results")) == "results"
    outside = tmp_path.parent / "elsewhere"
    assert _as_typed(outside) == str(outside.resolve())
