"""Identity-disjoint protocol splits, written once (seeded) and committed under datasets/splits/.

Split files hold identity and file names only (CSV: dataset, identity, role, file), never images.

- ``celebrities``: LFW identities with >= 20 usable photos: 10 inference + 10 test each (Privacy-Celebrities)
- ``commons``:     LFW identities with 15-19 usable photos: 10 inference + 5 test each (Privacy-Commons)
- ``distractors``: every usable photo of every other LFW identity (the 1:N gallery)
- ``train``:       VGGFace2-subset/train, minus identities reported to also be LFW people
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from ..atomic import atomic_write
from ..errors import BenchError
from ..paths import split_search_path, splits_dir
from .readers import ImageRecord

SPLIT_NAMES = ("train", "celebrities", "commons", "distractors")
GENERATOR_VERSION = 1
# VGGFace2 ids listed elsewhere as LFW identities (../shared/DATA.md); kept out of training so a
# generator never trains on a person whose photos it is later asked to protect
VGG_LFW_OVERLAP = ("n000021", "n000030")
PROTOCOLS = {"celebrities": (20, None, 10, 10), "commons": (15, 19, 10, 5)}  # min, max usable, n_inference, n_test


@dataclass(frozen=True)
class Row:
    dataset: str
    identity: str
    role: str  # inference | test | gallery | train
    file: str  # relpath inside the dataset's images root


class Split:
    def __init__(self, name: str, rows: list[Row]):
        self.name, self.rows = name, rows
        self._by_id: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            self._by_id[r.identity][r.role].append(r.file)

    @property
    def dataset(self) -> str:
        names = {r.dataset for r in self.rows}
        if len(names) != 1:
            raise BenchError(f"split {self.name} spans datasets {sorted(names)}")
        return names.pop()

    def identities(self) -> list[str]:
        return sorted(self._by_id)

    def files(self, identity: str, role: str) -> list[str]:
        return list(self._by_id[identity][role])

    def all_files(self, role: str | None = None) -> list[str]:
        return [r.file for r in self.rows if role is None or r.role == role]

    def content_hash(self) -> str:
        """Identifies the split by what it holds (every row), not its name: results follow the content."""
        h = hashlib.sha1()
        for r in self.rows:
            h.update(f"{r.dataset}\t{r.identity}\t{r.role}\t{r.file}\n".encode())
        return h.hexdigest()[:16]

    def counts(self) -> dict:
        roles: dict[str, int] = defaultdict(int)
        for r in self.rows:
            roles[r.role] += 1
        return {"identities": len(self._by_id), "images": len(self.rows), "by_role": dict(roles)}


def _choose(files: list[str], k: int, seed: int, identity: str) -> list[str]:
    # per-identity RNG: one identity's choice never depends on which other identities exist
    rng = random.Random(f"{seed}:{identity}")
    return rng.sample(sorted(files), k)


def make_splits(lfw_usable: list[ImageRecord], train_usable: list[ImageRecord], train_dataset: str = "vggface2-train",
                seed: int = 0) -> dict[str, Split]:
    """Build every split from the usable (aligned, colour) LFW and training photos."""
    by_id: dict[str, list[str]] = defaultdict(list)
    for rec in lfw_usable:
        by_id[rec.identity].append(rec.relpath)
    splits: dict[str, list[Row]] = {name: [] for name in SPLIT_NAMES}
    taken: set[str] = set()
    for name, (lo, hi, n_inf, n_test) in PROTOCOLS.items():
        for ident in sorted(by_id):
            n = len(by_id[ident])
            if ident in taken or n < lo or (hi is not None and n > hi):
                continue
            chosen = _choose(by_id[ident], n_inf + n_test, seed, ident)
            splits[name] += [Row("lfw", ident, "inference", f) for f in sorted(chosen[:n_inf])]
            splits[name] += [Row("lfw", ident, "test", f) for f in sorted(chosen[n_inf:])]
            taken.add(ident)
    # every LFW photo of a protocol identity is left out of the gallery, not only the chosen ones
    for ident in sorted(by_id):
        if ident not in taken:
            splits["distractors"] += [Row("lfw", ident, "gallery", f) for f in sorted(by_id[ident])]
    for rec in sorted(train_usable, key=lambda r: r.relpath):
        if rec.identity not in VGG_LFW_OVERLAP:
            splits["train"].append(Row(train_dataset, rec.identity, "train", rec.relpath))
    return {name: Split(name, rows) for name, rows in splits.items()}


def write_split_csv(split: Split, path: Path) -> Path:
    """One split file (dataset, identity, role, file), written atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["dataset", "identity", "role", "file"])
            w.writerows([[r.dataset, r.identity, r.role, r.file] for r in split.rows])

    atomic_write(path, write)
    return path


def write_splits(splits: dict[str, Split], seed: int, aligner_version: str, folder: Path | None = None) -> Path:
    folder = folder or splits_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for split in splits.values():
        write_split_csv(split, folder / f"{split.name}.csv")
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "aligner_version": aligner_version,
        "protocols": {k: dict(zip(("min_usable", "max_usable", "inference", "test"), v)) for k, v in PROTOCOLS.items()},
        "excluded_identities": {f"vggface2-train/{i}": "listed elsewhere as an LFW identity" for i in VGG_LFW_OVERLAP},
        "usable_means": "aligned, colour (grayscale photos are kept for verification but not used in mask splits)",
        "counts": {name: s.counts() for name, s in splits.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


# A split written from a folder of people names that folder relative to the splits folder, so the file
# holds no absolute path of the machine that wrote it; loading turns it back into the folder's path.
FOLDER_PREFIX = "folder:"
FIELDS = ("dataset", "identity", "role", "file")


def folder_dataset(root: Path, folder: Path) -> str:
    """The dataset column for the folder-of-people ``root`` in a split file stored in ``folder``."""
    return FOLDER_PREFIX + Path(os.path.relpath(Path(root).resolve(), Path(folder).resolve())).as_posix()


def load_split(name: str, folder: Path | None = None) -> Split:
    """Split ``name`` (a plain file name: it is joined to the splits folder) with every row checked: the
    four fields, a file path relative to its dataset that cannot leave it."""
    from ..validate import relative_path, safe_name

    safe_name(name, "split name")
    folders = [folder] if folder else split_search_path()
    path = next((f / f"{name}.csv" for f in folders if (f / f"{name}.csv").exists()), folders[0] / f"{name}.csv")
    if not path.exists():
        known = sorted({p.stem for f in folders for p in f.glob("*.csv")})
        raise BenchError(f"unknown split {name!r}; known splits: {', '.join(known) or '(none: run `bench data splits`)'}")
    folder = path.parent
    rows = []
    try:
        with open(path, newline="") as f:
            for n, r in enumerate(csv.DictReader(f), start=2):
                if set(r) != set(FIELDS) or any(not isinstance(r[k], str) or not r[k] for k in FIELDS):
                    raise BenchError(f"line {n} must have the fields {', '.join(FIELDS)}, each non-empty")
                relative_path(r["file"], f"line {n}: file")
                if r["dataset"].startswith(FOLDER_PREFIX):
                    r["dataset"] = str((folder / r["dataset"][len(FOLDER_PREFIX):]).resolve())
                rows.append(Row(**r))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BenchError(f"split file {path} is unreadable ({type(exc).__name__}: {exc})") from None
    except BenchError as exc:
        raise BenchError(f"split file {path}: {exc}") from None
    return Split(name, rows)


def disjointness(splits: dict[str, Split]) -> dict[str, bool]:
    """Per split: True when none of its identities (dataset-qualified) or files appears in another split."""
    ids = {n: {(r.dataset, r.identity) for r in s.rows} for n, s in splits.items()}
    files = {n: {(r.dataset, r.file) for r in s.rows} for n, s in splits.items()}
    ok = {n: True for n in splits}
    for a, b in combinations(splits, 2):
        if ids[a] & ids[b] or files[a] & files[b]:
            ok[a] = ok[b] = False
    return ok
