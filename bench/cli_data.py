"""``bench data ...``: prepare datasets, inspect them and their splits, look at aligned faces."""

from __future__ import annotations

import os
import random
from pathlib import Path

import click

from .errors import BenchError


@click.group()
def data() -> None:
    """Prepare (detect + align + cache) face datasets and inspect the protocol splits."""


def _open(name: str, root: str | None, layout: str | None):
    from .data.readers import DATASETS, LFW, FolderPerIdentity, PreAligned, open_dataset

    if layout and name not in DATASETS:
        if not root:
            raise BenchError(f"--layout needs --root for a new dataset {name!r}")
        return {"lfw": LFW, "folders": FolderPerIdentity, "aligned": PreAligned}[layout](name, Path(root))
    return open_dataset(name, root)


def _is_default_copy(ds) -> bool:
    """Whether ``ds`` reads the built-in dataset's default folder (the copy reports/ describes)."""
    from .data.readers import DATASETS

    if ds.name not in DATASETS:
        return False
    try:
        default = DATASETS.entry(ds.name).info["default_root"]()
    except (BenchError, KeyError):  # no shared folder here, or a plugin without a default
        return False
    return Path(ds.root).resolve() == Path(default).resolve()


def _reports_for(ds) -> Path:
    """Where reports about ``ds`` go by default. The committed reports/ describe the default copies:
    a report on another copy (--root) must not overwrite them, so unless BENCH_REPORTS names a
    folder it goes under the cache (re-creatable, never committed)."""
    from .paths import cache_dir, reports_dir

    if _is_default_copy(ds) or os.environ.get("BENCH_REPORTS"):
        return reports_dir()
    return cache_dir() / "reports"


@data.command()
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False), help="Your copy of the dataset (default: ../shared/data/...).")
@click.option("--layout", type=click.Choice(["lfw", "folders", "aligned"]), help="Layout of a dataset that is not built in.")
@click.option("--report-dir", type=click.Path(file_okay=False),
              help="Folder for NAME-failures.csv (default: reports/data/ for the default copy, or BENCH_REPORTS/data/; "
                   "for another --root, the cache's reports/data/, so the committed report stays as it is).")
def prepare(name: str, root: str | None, layout: str | None, report_dir: str | None) -> None:
    """Detect, align and cache every face of dataset NAME; write its failure report."""
    import time

    from .data.prepare import prepare as run_prepare

    ds = _open(name, root, layout)
    folder = Path(report_dir) if report_dir else _reports_for(ds) / "data"
    start = time.perf_counter()
    prepared = run_prepare(ds)
    seconds = time.perf_counter() - start
    report = prepared.write_report(folder / f"{ds.name}-failures.csv")
    s = prepared.summary()
    click.echo(
        f"{name}: {s['identities']} identities, {s['images']} images, {s['aligned']} aligned "
        f"({s['grayscale']} grayscale), {s['failed']} failed{' ' + str(s['failure_reasons']) if s['failed'] else ''}, "
        f"{s['empty_identity_folders']} empty identity folders  [{seconds:.1f} s]"
    )
    click.echo(f"failure report: {report}")


@data.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(as_json: bool) -> None:
    """Counts per dataset (from the cache: nothing is aligned here) and per protocol split."""
    from .cli_output import echo_json
    from .data.prepare import prepare as run_prepare
    from .data.readers import DATASETS, open_dataset
    from .data.splits import SPLIT_NAMES, disjointness, load_split

    datasets = {}
    for name in DATASETS.names():
        try:
            s = run_prepare(open_dataset(name), progress=False, dry=True).summary()
        except BenchError as exc:
            s = {"error": str(exc)}
        datasets[name] = s
    splits = {n: load_split(n) for n in SPLIT_NAMES}
    disjoint = disjointness(splits)
    split_info = {
        n: {"identities": len(sp.identities()), "images": len(sp.rows), "roles": sp.counts()["by_role"], "disjoint": disjoint[n]}
        for n, sp in splits.items()
    }
    if as_json:
        echo_json({"datasets": datasets, "splits": split_info})
        return
    click.echo(f"{'dataset':<16}{'identities':>11}{'images':>8}{'aligned':>9}{'failed':>8}{'pending':>9}")
    for name, s in datasets.items():
        if "error" in s:
            click.echo(f"{name:<16}  {s['error']}")
        else:
            click.echo(f"{name:<16}{s['identities']:>11}{s['images']:>8}{s['aligned']:>9}{s['failed']:>8}{s['pending']:>9}")
    click.echo(f"\n{'split':<14}{'identities':>11}{'images':>8}  disjoint  roles")
    for name, s in split_info.items():
        click.echo(f"{name:<14}{s['identities']:>11}{s['images']:>8}  {str(s['disjoint']):<8}  {s['roles']}")


@data.command()
@click.option("--seed", default=0, show_default=True, help="Seed of the per-identity choice of inference/test photos.")
def splits(seed: int) -> None:
    """(Re)write the committed split files from the prepared LFW and VGGFace2 data."""
    from .data.align import ALIGNER_VERSION
    from .data.prepare import prepare as run_prepare
    from .data.readers import open_dataset
    from .data.splits import disjointness, make_splits, write_splits

    lfw = run_prepare(open_dataset("lfw"))
    vgg = run_prepare(open_dataset("vggface2-train"))
    made = make_splits(lfw.usable(include_grayscale=False), vgg.usable(include_grayscale=False), vgg.name, seed)
    folder = write_splits(made, seed, ALIGNER_VERSION)
    ok = disjointness(made)
    for name, sp in made.items():
        c = sp.counts()
        click.echo(f"{name:<12} {c['identities']:>5} identities {c['images']:>6} images  disjoint={ok[name]}")
    click.echo(f"written to {folder}")


@data.command()
@click.argument("name")
@click.option("--n", "count", default=16, show_default=True, help="Number of faces.")
@click.option("--seed", default=0, show_default=True)
@click.option("--root", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False),
              help="PNG path (default: reports/figures/data-NAME.png; for another --root, under the cache, as for prepare).")
def show(name: str, count: int, seed: int, root: str | None, out: str | None) -> None:
    """Write a PNG grid of N randomly chosen aligned faces of dataset NAME."""
    from .data.grid import save_grid
    from .data.prepare import prepare as run_prepare

    ds = _open(name, root, None)
    scan = ds.scan()
    picked = random.Random(seed).sample([r.relpath for r in scan.records], min(count, len(scan.records)))
    prepared = run_prepare(ds, only=picked, progress=False)
    usable = [p for p in picked if prepared.status_of(p) in ("ok", "grayscale")]
    if not usable:
        raise BenchError(f"none of the {len(picked)} sampled images of {name} has an aligned face")
    path = save_grid(prepared.faces(usable), Path(out) if out else _reports_for(ds) / "figures" / f"data-{name}.png")
    click.echo(f"{len(usable)} faces -> {path}")


@data.command("split")
@click.argument("name")
@click.option("--from", "source", required=True,
              help="A dataset name (see `bench data info`) or a folder with one sub-folder of photos per person.")
@click.option("--inference", default=10, show_default=True, type=click.IntRange(min=1), help="Photos per person the mask is crafted from.")
@click.option("--test", default=10, show_default=True, type=click.IntRange(min=2), help="Photos per person that are protected and identified.")
@click.option("--identities", default=None, help="Only these identities (comma-separated; default: every one with enough photos).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--overwrite", is_flag=True, help="Replace an existing split of that name.")
def split_from(name, source, inference, test, identities, seed, overwrite):
    """Write split NAME (people with inference + test photos) from any dataset or folder of people;
    then `bench run --split NAME` protects them among the LFW distractors."""
    from .data.person_split import check_split_name, make_person_split, write_person_split
    from .data.readers import DATASETS, FolderPerIdentity, open_dataset

    check_split_name(name)  # before any photo is aligned

    if source in DATASETS:
        ds = open_dataset(source)
    elif Path(source).is_dir():
        folder = str(Path(source).resolve())
        ds = FolderPerIdentity(folder, folder)  # named by its path, so `bench run` finds it again
    else:
        raise BenchError(f"--from {source!r} is neither a dataset ({', '.join(DATASETS.names())}) nor a folder")
    wanted = [i.strip() for i in identities.split(",") if i.strip()] if identities else None
    made, report = make_person_split(name, ds, inference, test, seed, wanted)
    path = write_person_split(made, report, overwrite=overwrite)
    c = made.counts()
    click.echo(f"{name}: {c['identities']} identities, {c['images']} photos -> {path}")
    for ident, why in report["skipped"].items():
        click.echo(f"  skipped {ident}: {why}")


@data.command("gallery")
@click.argument("name")
@click.option("--from", "parts", required=True,
              help="Comma-separated splits (their rows, e.g. distractors, train) and datasets (their usable photos, "
                   "e.g. vggface2-test, glint-celeb24), in this order.")
@click.option("--exclude", default="celebrities,commons", show_default=True,
              help="Splits whose people are never distractors (matched by identity name in every dataset).")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Keep only this many rows, drawn seeded (smaller galleries of the same crowd).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--overwrite", is_flag=True, help="Replace an existing split of that name.")
def gallery_from(name, parts, exclude, sample, seed, overwrite):
    """Write split NAME, a distractor gallery combining datasets; then `bench run --gallery NAME`.

    The ~22k-face gallery of LFW + VGGFace2 + Glint: `bench data gallery crowd --from
    distractors,train,vggface2-test,glint-celeb24`. With `train` in it, the adaptive protocol (whose
    attacker trains on `train`'s people) refuses the gallery: leave `train` out for that protocol."""
    from .data.gallery_split import combine_gallery
    from .data.person_split import check_split_name, write_person_split

    check_split_name(name)
    split, report = combine_gallery(name, [p.strip() for p in parts.split(",") if p.strip()],
                                    [s.strip() for s in exclude.split(",") if s.strip()], sample=sample, seed=seed)
    path = write_person_split(split, report, overwrite=overwrite)
    c = split.counts()
    click.echo(f"{name}: {c['identities']} identities, {c['images']} photos ({report['datasets']}) -> {path}")
    for why, n in report["dropped"].items():
        click.echo(f"  dropped {n}: {why}")
