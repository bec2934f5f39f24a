"""A distractor gallery combining several datasets (``bench data gallery NAME --from A,B,...``).

Each part is a split (its rows, as they are: e.g. ``distractors``, or ``train`` for VGGFace2-train's
usable photos) or a dataset (its usable photos: aligned, colour). People who are protected must not
also be distractors, so rows are dropped when their identity is one of the ``--exclude`` splits'
people by name in any dataset (18 Glint celebrities are LFW people too), or one of the VGGFace2 ids
listed elsewhere as LFW identities. The gallery-side protocol labels distractors by identity name, so a
Glint celebrity who is an LFW distractor stays one class.
"""

from __future__ import annotations

import random
from collections import Counter

from ..errors import BenchError
from .prepare import prepare
from .readers import DATASETS, open_dataset
from .splits import VGG_LFW_OVERLAP, Row, Split, load_split

def dataset_rows(name: str, progress: bool = True) -> list[Row]:
    """Every usable photo (aligned, colour: as the built-in distractors) of dataset ``name`` as gallery rows;
    aligns what the cache does not hold yet."""
    usable = prepare(open_dataset(name), progress=progress).usable(include_grayscale=False)
    return [Row(name, r.identity, "gallery", r.relpath) for r in sorted(usable, key=lambda r: r.relpath)]


def combine_gallery(name: str, parts: list[str], exclude: list[str], folder=None, progress: bool = True,
                    sample: int | None = None, seed: int = 0) -> tuple[Split, dict]:
    """The combined split and a report (rows per part, rows dropped and why). ``sample``: keep that many
    rows, drawn seeded and kept in their order (the smaller galleries of the gallery-size figure)."""
    if not parts:
        raise BenchError("--from needs at least one split or dataset name")
    people = {r.identity for s in exclude for r in load_split(s, folder).rows}
    rows: list[Row] = []
    report: dict = {"parts": {}, "excluded_people_from": exclude, "dropped": Counter()}
    seen: set[tuple[str, str]] = set()
    for part in parts:
        if part in DATASETS:
            got = dataset_rows(part, progress)
        else:
            try:
                got = [Row(r.dataset, r.identity, "gallery", r.file) for r in load_split(part, folder).rows]
            except BenchError as exc:
                raise BenchError(f"--from {part!r} is neither a dataset ({', '.join(DATASETS.names())}) nor a split: {exc}") from None
        kept = 0
        for r in got:
            why = ("a protected person" if r.identity in people else
                   "a VGGFace2 id listed as an LFW identity" if r.dataset.startswith("vggface2") and r.identity in VGG_LFW_OVERLAP else
                   "listed twice" if (r.dataset, r.file) in seen else None)
            if why:
                report["dropped"][f"{part}: {why}"] += 1
                continue
            seen.add((r.dataset, r.file))
            rows.append(r)
            kept += 1
        report["parts"][part] = kept
    if not rows:
        raise BenchError(f"gallery {name!r} would be empty ({dict(report['dropped'])})")
    if sample is not None:
        if not 0 < sample <= len(rows):
            raise BenchError(f"--sample must be from 1 to the {len(rows)} rows the parts give, got {sample}")
        keep = sorted(random.Random(f"gallery-sample:{seed}").sample(range(len(rows)), sample))
        rows = [rows[i] for i in keep]
        report.update(sample=sample, seed=seed)
    split = Split(name, rows)
    report.update(dropped=dict(report["dropped"]), counts=split.counts(), content_hash=split.content_hash(),
                  datasets=dict(Counter(r.dataset for r in rows)))
    return split, report
