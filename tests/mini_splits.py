"""The small real LFW slice the runner, scorer and report tests share: 3 people with >= 15 photos
(10 inference + 5 test each, so the `commons` split) and 60 distractor photos (2 of 30 people)."""

from __future__ import annotations

from pathlib import Path

PEOPLE = ["Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi"]


def write_mini_splits(folder: Path, lfw=None) -> Path:
    """Write the slice's split files into ``folder`` (``lfw``: an opened LFW dataset, else the default copy)."""
    from bench.data import open_dataset
    from bench.data.splits import make_splits, write_splits

    records = (lfw or open_dataset("lfw")).scan().records
    usable = [r for r in records if r.identity in PEOPLE and int(r.relpath[-8:-4]) <= 15]
    others = sorted({r.identity for r in records if r.identity not in PEOPLE and r.identity.startswith("Al")})[:30]
    usable += [r for r in records if r.identity in others and int(r.relpath[-8:-4]) <= 2]
    write_splits(make_splits(usable, [], seed=0), seed=0, aligner_version="test", folder=folder)
    return folder
