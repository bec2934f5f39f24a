"""``bench regress``: the CI regression of protection rates against the committed baseline."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from .errors import BenchError


@click.command("regress")
@click.option("--update", is_flag=True, help="Bless the measured rates as the new baseline (needs --reason).")
@click.option("--reason", default="", help="Why the rates changed; recorded with the commit in the baseline's history.")
@click.option("--work", type=click.Path(file_okay=False), help="Folder for the run's splits and results (default: a temporary one).")
def regress(update, reason, work):
    """Run the small fixed benchmark and compare its protection rates with tests/regression_baseline.json."""
    from .paths import repo_root
    from .regress import BASELINE, Baseline, RegressionConfig, bless, compare, measure

    if update:
        from .provenance import git_commit

        if not reason.strip():
            raise BenchError("--update needs --reason: say why the protection rates changed")
        if git_commit().endswith("-dirty"):
            raise BenchError(f"the checkout has uncommitted changes ({git_commit()}): commit first, so the baseline "
                             "records the commit that measured it")
    cfg = RegressionConfig()
    # the baseline is checked before minutes of measuring: a broken one stops here, in one line
    baseline = None if update and not (repo_root() / BASELINE).exists() else Baseline.load(cfg=None if update else cfg)
    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="bench-regress-"))
    measured = measure(cfg, folder, progress=True)
    if update:
        click.echo(f"baseline written: {bless(measured, cfg, reason)}")
        return
    tolerance = baseline.tolerance
    problems = compare(baseline.rates, measured, tolerance)
    for cell, r in measured.items():
        was = baseline.rates.get(cell)
        shown = f"{was['top1']:6.1f} {was['top5']:6.1f}" if was else "   (new)     "
        click.echo(f"{cell:<34} baseline {shown}   now {r['top1']:6.1f} {r['top5']:6.1f}")
    if problems:
        raise BenchError("protection rates moved beyond the tolerance:\n  " + "\n  ".join(problems))
    click.echo(f"all {len(measured)} cells within {tolerance:g} points of the baseline; no ordering flipped")
