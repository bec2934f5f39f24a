"""A protocol split from any folder of people (``bench data split NAME --from DATASET``), so a user can
benchmark masks on their own photos among LFW's distractors.

Each identity with enough usable (aligned, colour) photos gets ``inference`` + ``test`` of them, chosen
by a per-identity seeded shuffle; photos are aligned lazily in that order, only until enough are usable,
so a large folder is not aligned in full.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..errors import BenchError
from ..paths import splits_dir
from .prepare import prepare
from .readers import FolderPerIdentity
from ..atomic import atomic_write
from ..validate import safe_name
from .splits import SPLIT_NAMES, Row, Split, folder_dataset, write_split_csv

USABLE = ("ok",)  # grayscale photos are kept for verification, never protected (as in the built-in splits)


def _usable_photos(dataset: FolderPerIdentity, files: list[str], needed: int, seed: int, identity: str) -> list[str]:
    order = sorted(files)
    random.Random(f"{seed}:{identity}").shuffle(order)
    usable: list[str] = []
    start = 0
    while len(usable) < needed and start < len(order):
        chunk = order[start : start + needed - len(usable)]
        start += len(chunk)
        prepared = prepare(dataset, only=chunk, progress=False)
        usable += [f for f in chunk if prepared.status_of(f) in USABLE]
    return usable


def make_person_split(name: str, dataset: FolderPerIdentity, inference: int, test: int, seed: int = 0,
                      identities: list[str] | None = None) -> tuple[Split, dict]:
    """The split, and a report: identities skipped for having too few usable photos."""
    if inference < 1 or test < 2:
        raise BenchError(f"a split needs >= 1 inference and >= 2 test photos per person (got {inference}, {test}): "
                         "identification pairs each test photo with another")
    by_id: dict[str, list[str]] = {}
    for rec in dataset.scan().records:
        by_id.setdefault(rec.identity, []).append(rec.relpath)
    if identities:
        unknown = sorted(set(identities) - set(by_id))
        if unknown:
            raise BenchError(f"{dataset.name}: no identity {', '.join(unknown)}; it has {len(by_id)} "
                             f"(first: {', '.join(sorted(by_id)[:5])})")
        by_id = {i: by_id[i] for i in identities}
    rows, skipped = [], {}
    for ident in sorted(by_id):
        chosen = _usable_photos(dataset, by_id[ident], inference + test, seed, ident)
        if len(chosen) < inference + test:
            skipped[ident] = f"{len(chosen)} usable photos of {len(by_id[ident])}, {inference + test} needed"
            continue
        rows += [Row(dataset.name, ident, "inference", f) for f in sorted(chosen[:inference])]
        rows += [Row(dataset.name, ident, "test", f) for f in sorted(chosen[inference:])]
    if not rows:
        raise BenchError(f"{dataset.name}: no identity has {inference + test} usable photos ({len(skipped)} tried)")
    split = Split(name, rows)
    return split, {"dataset": dataset.name, "seed": seed, "inference": inference, "test": test,
                   "counts": split.counts(), "skipped": skipped, "content_hash": split.content_hash()}


def check_split_name(name: str) -> str:
    """A name for a new split: a plain file name (it becomes NAME.csv in the splits folder), not a built-in one."""
    safe_name(name, "split name")
    if name in SPLIT_NAMES or name == "manifest":
        raise BenchError(f"{name!r} is a built-in split (written by `bench data splits`); choose another name")
    return name


def write_person_split(split: Split, report: dict, folder: Path | None = None, overwrite: bool = False) -> Path:
    folder = folder or splits_dir()
    check_split_name(split.name)
    path = folder / f"{split.name}.csv"
    if path.exists() and not overwrite:
        raise BenchError(f"split {split.name!r} exists ({path}); pass --overwrite to replace it (its cells then stop matching)")
    # a folder of people is stored relative to the splits folder: no absolute path of this machine in the file
    rows = [Row(folder_dataset(Path(r.dataset), folder), r.identity, r.role, r.file) if Path(r.dataset).is_absolute() else r
            for r in split.rows]
    write_split_csv(Split(split.name, rows), path)
    if "dataset" in report and Path(report["dataset"]).is_absolute():
        report = {**report, "dataset": folder_dataset(Path(report["dataset"]), folder)}
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(report, indent=2) + "\n"))
    return path
