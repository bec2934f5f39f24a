"""The committed reports/ must describe what ships: every generator checkpoint a report names is the
shipped one (by sha256), and every cell behind the page comes from a clean commit.

Both were false until the reports were regenerated from the records of one full `make run` at a clean
commit (results/records); they now guard against a report that names a replaced checkpoint or mixes in
cells from uncommitted code. `bench report --check` (tests/test_records.py, `make test`) guards the rest:
that reports/ is what the records give."""

from __future__ import annotations

import hashlib
import re

from bench.paths import repo_root

REPORTS = repo_root() / "reports"
WEIGHTS = repo_root() / "methods" / "weights"


def shipped_prefixes() -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in WEIGHTS.glob("*/*.safetensors")}


def named_checkpoints() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(REPORTS.glob("*.csv")) + sorted(REPORTS.glob("*.md")):
        for sha in re.findall(r"checkpoint_sha256=([0-9a-f]{12})", path.read_text()):
            found.setdefault(sha, set()).add(path.name)
    return found


def test_the_check_reads_real_reports_and_real_weights():
    """The two checks below look at something: the reports name checkpoints, and 24 are shipped."""
    assert len(shipped_prefixes()) == 24
    named = named_checkpoints()
    assert len(named) >= 17 and set(named) & shipped_prefixes()


def test_every_checkpoint_a_committed_report_names_is_the_shipped_one():
    stale = {sha: files for sha, files in named_checkpoints().items() if sha not in shipped_prefixes()}
    assert not stale, f"reports name checkpoints that do not ship: {stale}"


def test_the_committed_page_lists_cells_from_clean_commits_only():
    page = (REPORTS / "index.md").read_text()
    commits = re.findall(r"`([0-9a-f]{40}(?:-dirty)?)` \(\d+ cells\)", page)
    assert commits, "the page no longer lists its commits: update this test"
    assert not [c for c in commits if c.endswith("-dirty")]
