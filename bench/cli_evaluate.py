"""``bench evaluate PROTECTED --originals ORIGINALS``: score another tool's protected photos like a method."""

from __future__ import annotations

import click

from .validate import Finite
from .validate import budget as budget_check


@click.command()
@click.argument("protected", type=click.Path(exists=True, file_okay=False))
@click.option("--originals", type=click.Path(exists=True, file_okay=False),
              help="The same people's original photos, at the same relative paths (a file's extension may differ).")
@click.option("--split", default=None,
              help="Score the test photos of this split's people (e.g. celebrities, commons): their originals are the "
                   "split's own photos, and complete rows join the split's tables. Leave out --originals.")
@click.option("--name", required=True, help="The tool's name: the rows' method label in the tables.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Result store for the rows and evaluations/NAME.md (default: the benchmark's, $BENCH_RESULTS or results/).")
@click.option("--targets", default="all", show_default=True, help="Zoo models that score the photos, or 'all'.")
@click.option("--protocols", default="identification,gallery-side,linkability", show_default=True,
              help="Scorers, comma-separated (docs/running.md): probe-side, gallery-side, linkability.")
@click.option("--transform", "transforms", multiple=True,
              help="Crop transform chain applied to the attacker's crops before scoring (repeatable; '' = as saved, "
                   "always included), e.g. jpeg:75.")
@click.option("--gallery", default="distractors", show_default=True, help="Split of the distractor gallery.")
@click.option("--allow-resize", is_flag=True,
              help="Score a protected photo whose size differs from its original's at the original's size (reported).")
@click.option("--rescale-to", default=None, type=Finite(check=budget_check),
              help="Also score the tool at this L2 (0-255, 112x112 crop): its difference to the original, in the "
                   "aligned crop, rescaled and re-applied (e.g. 1200, the benchmark's budget).")
@click.option("--device", default="cpu", show_default=True)
def evaluate(protected, originals, split, name, out_dir, targets, protocols, transforms, gallery, allow_resize, rescale_to,
             device):
    """Score protected photos made by any tool (PROTECTED: one sub-folder per person, or one person's folder)."""
    from .evaluation import evaluate_folder

    chains = ("",) + tuple(t for t in transforms if t.strip())
    evaluate_folder(protected, name=name, originals=originals, split=split, out=out_dir, targets=targets,
                    protocols=tuple(p.strip() for p in protocols.split(",") if p.strip()), transforms=chains,
                    gallery=gallery, allow_resize=allow_resize, rescale_to=rescale_to, device=device, echo=click.echo)
