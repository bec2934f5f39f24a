"""``bench cloak PHOTOS_DIR --out DIR`` and ``bench verify-cloak DIR``: protect one's own photos."""

from __future__ import annotations

import json

import click

from .cloak_defaults import DEFAULT_METHOD, DEFAULT_SOURCE
from .errors import BenchError
from .validate import Finite
from .validate import budget as budget_check


def _params(items: tuple[str, ...], method: str) -> dict:
    """KEY=VALUE overrides of the method's parameters (checked against its Params)."""
    from methods import METHODS
    from methods.base import validate_overrides

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return validate_overrides(METHODS.entry(method).factory, out)


@click.command()
@click.argument("photos_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the protected photos and report.json / report.md (not the photos folder).")
@click.option("--method", default=DEFAULT_METHOD, show_default=True,
              help="Mask method (see `bench methods`); the default is the best measured through the full photo "
                   "(docs/protect-your-photos.md, 'Which method').")
@click.option("--source", default=DEFAULT_SOURCE, show_default=True,
              help="Surrogate recognizer the mask is crafted with (generator methods: one with a trained checkpoint).")
@click.option("--budget", default=1200.0, show_default=True, type=Finite(check=budget_check),
              help="L2 budget on the 112x112 face crop (0-255): a finite number > 0, at most the crop's largest L2.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg"]), default="png", show_default=True)
@click.option("--quality", default=95, show_default=True, type=click.IntRange(1, 100), help="JPEG quality (--format jpeg).")
@click.option("--targets", default="all", show_default=True, help="Zoo models the protection is measured against, or 'all'.")
@click.option("--gallery-size", default=2000, show_default=True, type=click.IntRange(0),
              help="LFW distractors in the offline identification gallery (0: do not measure protection).")
@click.option("--multi-face", type=click.Choice(["refuse", "main"]), default="refuse", show_default=True,
              help="A photo with several faces: refuse it, or protect only the face nearest the centre (the one an "
                   "aligner takes) and report the others as unprotected.")
@click.option("--max-inference", default=10, show_default=True, type=click.IntRange(1),
              help="Photos the person mask is crafted from (the first ones, by file name).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--param", "-p", "params", multiple=True, help="Method parameter override KEY=VALUE (repeatable).")
@click.option("--figure/--no-figure", default=False, show_default=True,
              help="Also write before_after.png (it shows the ORIGINAL photos: do not publish it).")
@click.option("--overwrite", is_flag=True,
              help="Replace files in --out that `bench cloak` did not write (by default it refuses and names them).")
@click.option("--strict", is_flag=True, help="Refuse a folder whose photos do not look like one person (default: warn).")
def cloak(photos_dir, out_dir, method, source, budget, fmt, quality, targets, gallery_size, multi_face, max_inference,
          seed, params, figure, overwrite, strict):
    """Protect the photos of one person in PHOTOS_DIR; full-resolution protected copies go to --out."""
    from .cloak import cloak_folder

    report = cloak_folder(photos_dir, out_dir, method=method, source=source, budget=budget, fmt=fmt, quality=quality,
                          targets=targets, gallery_size=gallery_size, multi_face=multi_face,
                          params=_params(params, method), seed=seed, max_inference=max_inference, figure=figure,
                          overwrite=overwrite, strict=strict, echo=click.echo, progress=False)
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items())
    click.echo(f"{counts}; report: {out_dir}/report.md")


@click.command("verify-cloak")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--originals", type=click.Path(exists=True, file_okay=False),
              help="The original photos (default: the folder the report names, if it still exists).")
@click.option("--targets", default="all", show_default=True)
@click.option("--gallery-size", default=None, type=click.IntRange(0), help="Default: the size the report used.")
def verify_cloak(out_dir, originals, targets, gallery_size):
    """Re-check a folder written by `bench cloak`: outputs intact, faces re-detected, SSIM and protection re-measured."""
    from .cloak import verify_cloak as run_verify

    result = run_verify(out_dir, originals=originals, targets=targets, gallery_size=gallery_size, echo=click.echo)
    if result["problems"]:
        raise click.ClickException(f"{len(result['problems'])} problem(s), listed above")
    click.echo(f"{len(result['checked'])} protected photo(s) checked, no problem")
