"""Which protected photo belongs to which original: folders of people, matched by relative path.

PROTECTED holds one sub-folder per person (or is a single person's folder: photos directly in it), and
ORIGINALS the same people's original photos at the same relative paths. A protected file matches the
original with the same relative path, or with the same path but another extension (a tool that writes
``me.png`` for ``me.jpg``; `bench cloak` does). Everything that cannot be matched gets one line and is
left out: nothing is skipped silently. `bench cloak`'s own report files in a person's folder are named
once and skipped (they are not photos).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..cloak import FIGURE, REPORT_JSON, REPORT_MD, VERIFY_JSON
from ..data.readers import printable_name
from ..errors import BenchError
from ..outdir import MANIFEST

# the files `bench cloak` writes beside the protected photos: not photos to score (before_after.png shows originals)
CLOAK_FILES = frozenset({REPORT_JSON, REPORT_MD, VERIFY_JSON, FIGURE, MANIFEST})


@dataclass
class Pair:
    person: str
    name: str  # person/file inside PROTECTED, printable (what every line names)
    protected: Path
    original: str  # person/file relative to the originals' root (the split's dataset, or ORIGINALS)


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise BenchError(f"cannot list {folder} ({type(exc).__name__})") from None


def people_folders(protected: Path, echo: Callable[[str], None]) -> list[tuple[str, Path, str]]:
    """(person, folder, prefix of the originals' relative paths) for each person in PROTECTED."""
    entries = _entries(protected)
    if not entries:
        raise BenchError(f"{protected} is empty: put each person's protected photos in a sub-folder named after them")
    dirs = [e for e in entries if e.is_dir()]
    if not dirs:  # a single person's folder: the photos are directly in it
        return [(printable_name(protected.resolve().name), protected, "")]
    for e in entries:
        if not e.is_dir():
            echo(f"{printable_name(e.name)}: not scored, not in a person's sub-folder (PROTECTED holds one folder per person)")
    return [(printable_name(d.name), d, d.name + "/") for d in dirs]


Originals = Callable[[str, str], dict[str, str]]


def match_pairs(protected: Path, originals: Originals, echo: Callable[[str], None]) -> list[Pair]:
    """Every protected photo with its original. ``originals(person, prefix)``: that person's originals, as
    {relative path they would have in PROTECTED (``prefix`` + file name): their own relative path}."""
    pairs = []
    for person, folder, prefix in people_folders(protected, echo):
        candidates = originals(person, prefix)
        if not candidates:
            echo(f"{person}: not scored, no originals for this person ({getattr(originals, 'where', 'none found')})")
            continue
        by_stem: dict[str, list[str]] = {}
        for rel in candidates:
            by_stem.setdefault(_stem(rel), []).append(rel)
        cloak_files = (folder / MANIFEST).exists()
        skipped = []
        for entry in _entries(folder):
            name = printable_name(prefix + entry.name)
            if cloak_files and entry.name in CLOAK_FILES:
                skipped.append(entry.name)
                continue
            if not entry.is_file():
                echo(f"{name}: not scored, not a file (a person's photos are directly in their folder)")
                continue
            rel = prefix + entry.name
            if rel in candidates:
                pairs.append(Pair(person, name, entry, candidates[rel]))
                continue
            same = by_stem.get(_stem(rel), [])
            if len(same) == 1:
                pairs.append(Pair(person, name, entry, candidates[same[0]]))
            elif not same:
                echo(f"{name}: not scored, unmatched: no original with this name (any extension) among the originals")
            else:
                echo(f"{name}: not scored, ambiguous: {len(same)} originals share its name ({', '.join(printable_name(s) for s in same)})")
        if skipped:
            echo(f"{person}: `bench cloak`'s report files skipped ({', '.join(skipped)})")
    return pairs


def _stem(rel: str) -> str:
    head, _, tail = rel.rpartition("/")
    stem = tail.rsplit(".", 1)[0] if "." in tail[1:] else tail
    return f"{head}/{stem}" if head else stem


class FolderListing:
    """The originals in ORIGINALS: files of the person's folder ``prefix`` (or directly in ORIGINALS for '')."""

    where = "no folder of that name among the originals, or an empty one"

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, person: str, prefix: str) -> dict[str, str]:
        folder = self.root / prefix if prefix else self.root
        if not folder.is_dir():
            return {}
        return {prefix + e.name: prefix + e.name for e in _entries(folder) if e.is_file()}


class SplitListing:
    """A split's photos of the person (every role: a protected photo of another role is named, not unmatched)."""

    def __init__(self, split):
        self.split, self.where = split, f"not a person of split {split.name!r}"

    def __call__(self, person: str, prefix: str) -> dict[str, str]:
        rels = [r.file for r in self.split.rows if r.identity == person]
        return {prefix + rel.rsplit("/", 1)[-1]: rel for rel in rels}
