"""``bench records``: the committed results of record (:mod:`bench.records`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("records")
def records() -> None:
    """Results of record: small committed JSON files from which `bench report` rebuilds every report."""


@records.command("export")
@click.option("--results", type=click.Path(file_okay=False), help="Result store to export (default: results/ or BENCH_RESULTS).")
@click.option("--out", type=click.Path(file_okay=False), help="Records folder (default: results/records or BENCH_RECORDS).")
@click.option("--allow-dirty", is_flag=True,
              help="Export cells made at a -dirty or unknown commit (an experiment: its records say \"clean\": false).")
@click.option("--replace", is_flag=True, help="Empty the records folder first (default: cells already recorded and not "
                                              "in the store are kept; those in it are replaced).")
def export(results, out, allow_dirty, replace):
    """Write a result store's cells (one JSON per split, source and method configuration) and run profiles as
    records. Refuses cells made at a -dirty or unknown commit unless --allow-dirty."""
    from .records import export as export_records
    from .store import ResultStore

    store = ResultStore(results) if results else ResultStore()
    done = export_records(store, Path(out) if out else None, allow_dirty=allow_dirty, replace=replace)
    root = Path(out) if out else None
    click.echo(f"{done.new_cells} cells from {store.root}; the records now hold {done.cells} cells in "
               f"{len(done.records)} files and {done.profiles} run profiles"
               + (f" under {root}" if root else "") + (f"; removed {len(done.removed)} stale file(s)" if done.removed else ""))
    if done.dirty:
        click.echo(f"{done.dirty} cells are from a -dirty or unknown commit: their records say \"clean\": false")
    click.echo("next: `bench report --from records` rewrites reports/ and the README's tables from them; commit both")
