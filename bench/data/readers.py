"""Dataset readers: where the images of each identity are, and which protocol files come with them.

Three layouts: LFW (official folder layout + pairs.txt/people.txt), folder-per-identity photos of
any size (VGGFace2 layout, need detection), and pre-aligned 112x112 crops (insightface/Glint layout).
A user points any reader at their own copy with ``root``; defaults are the folders in ../shared/data.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import BenchError
from ..paths import data_dir
from ..registry import Registry

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class ImageRecord:
    identity: str
    relpath: str  # relative to the reader's images_root, always with '/' separators


@dataclass
class Failure:
    """An image (or folder, path ending in '/') kept out of the benchmark, with a short stable reason."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class Scan:
    records: list[ImageRecord]
    empty_identities: list[str]  # identity folders holding no image file
    rejected: list[Failure] = field(default_factory=list)  # image files whose names cannot be used


def name_problem(name: str) -> str:
    """Why a file or folder name cannot enter the benchmark ('' if it can).

    Names end up in CSV reports, split files and terminal output. Linux allows any bytes in a name,
    and Python hands undecodable ones over as lone surrogates, which no UTF-8 file can hold; control
    characters (newline, tab, escape, ...) would split lines or garble terminals.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    bad = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    return f"contains the control character U+{ord(bad):04X}" if bad else ""


def printable_name(name: str) -> str:
    """``name`` with undecodable bytes as ``\\xNN`` and control characters escaped: safe in any UTF-8 text."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _relpath_problem(identity: str, file_name: str) -> str:
    if name_problem(identity):
        return f"identity folder name {name_problem(identity)}"
    return f"file name {name_problem(file_name)}" if name_problem(file_name) else ""


class FolderPerIdentity:
    """``root/<identity>/<image>`` photos of any size; faces are detected and aligned."""

    pre_aligned = False

    def __init__(self, name: str, root: Path | str, subdir: str = ""):
        self.name, self.root = name, Path(root)
        self.images_root = self.root / subdir if subdir else self.root

    def scan(self) -> Scan:
        if not self.images_root.is_dir():
            raise BenchError(f"dataset {self.name!r}: folder {self.images_root} does not exist (pass --root to point at your copy)")
        records, empty, rejected = [], [], []
        for ident_dir in sorted(p for p in self.images_root.iterdir() if p.is_dir()):
            files = sorted(f for f in ident_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            ident = ident_dir.name
            if not files:
                empty.append(printable_name(ident))
            for f in files:
                relpath = f"{ident}/{f.name}"
                problem = _relpath_problem(ident, f.name)
                if problem:
                    rejected.append(Failure(printable_name(relpath), "bad file name",
                                            f"{problem}; rename it (UTF-8, no control characters) to include it"))
                else:
                    records.append(ImageRecord(ident, relpath))
        return Scan(records, empty, rejected)


class PreAligned(FolderPerIdentity):
    """``root/<identity>/<image>`` crops already aligned to the ArcFace 112x112 template."""

    pre_aligned = True


class LFW(FolderPerIdentity):
    """Labeled Faces in the Wild: ``root/images/<Name>/<Name>_NNNN.jpg`` plus the protocol files."""

    def __init__(self, name: str = "lfw", root: Path | str | None = None):
        super().__init__(name, root or data_dir() / "lfw", "images")

    @staticmethod
    def image_path(identity: str, number: int) -> str:
        return f"{identity}/{identity}_{int(number):04d}.jpg"

    def pairs(self, filename: str = "pairs.txt") -> list[list[tuple[str, str, bool]]]:
        """The official verification folds: each fold a list of (relpath_a, relpath_b, same_identity)."""
        path = self.root / filename
        if not path.exists():
            raise BenchError(f"LFW protocol file {path} is missing")
        lines = path.read_text().split("\n")
        header = lines[0].split()
        n_folds, n_per = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
        rows = [line.split() for line in lines[1:] if line.strip()]
        if len(rows) != n_folds * 2 * n_per:
            raise BenchError(f"{path}: expected {n_folds * 2 * n_per} pairs, found {len(rows)}")
        folds = []
        for k in range(n_folds):
            fold = []
            for row in rows[k * 2 * n_per : (k + 1) * 2 * n_per]:
                if len(row) == 3:
                    fold.append((self.image_path(row[0], row[1]), self.image_path(row[0], row[2]), True))
                else:
                    fold.append((self.image_path(row[0], row[1]), self.image_path(row[2], row[3]), False))
            folds.append(fold)
        return folds

    def people(self, filename: str = "people.txt") -> dict[str, int]:
        lines = [line.split() for line in (self.root / filename).read_text().split("\n") if line.strip()]
        return {row[0]: int(row[1]) for row in lines if len(row) == 2}


DATASETS: Registry[FolderPerIdentity] = Registry("dataset")


def register_dataset(name: str, description: str, default_root: Callable[[], Path]):
    def decorator(factory):
        DATASETS.add(name, factory, description=description, default_root=default_root)
        return factory

    return decorator


@register_dataset("lfw", "LFW deep-funneled, 5,749 identities, official pairs/people protocol", lambda: data_dir() / "lfw")
def _lfw(root=None):
    return LFW("lfw", root)


@register_dataset("vggface2-train", "VGGFace2 subset (loose crops), 62 identities: training only", lambda: data_dir() / "vggface2-subset/train")
def _vgg_train(root=None):
    return FolderPerIdentity("vggface2-train", root or data_dir() / "vggface2-subset/train")


@register_dataset("vggface2-test", "VGGFace2 subset (loose crops), 7 identities: held-out reserve", lambda: data_dir() / "vggface2-subset/test")
def _vgg_test(root=None):
    return FolderPerIdentity("vggface2-test", root or data_dir() / "vggface2-subset/test")


@register_dataset("glint-celeb24", "Glint360K celebrities, pre-aligned 112x112, 24 identities", lambda: data_dir() / "glint-celeb24-112")
def _glint(root=None):
    return PreAligned("glint-celeb24", root or data_dir() / "glint-celeb24-112")


def open_dataset(name: str, root: Path | str | None = None) -> FolderPerIdentity:
    """A registered dataset by name, or (for splits written by `bench data split --from FOLDER`) a
    folder-per-identity folder named by its absolute path."""
    if name not in DATASETS and root is None and Path(name).is_absolute() and Path(name).is_dir():
        return FolderPerIdentity(name, name)
    return DATASETS.create(name, root=root)
