"""On-disk store of aligned crops, keyed by image content and aligner version.

One SQLite file per aligner version; one row per distinct image content (SHA-1 of the file bytes),
holding the crop or the reason it failed. Content keys make the cache survive moved/renamed copies and
re-align only what changed; SQLite transactions make every batch of writes atomic, so an interrupted
``prepare`` resumes where it stopped.

Every crop has the SHA-1 of its bytes beside it, checked on every read: a crop damaged on disk (a
zeroed page, a bad sector) is reported as :class:`DamagedCrops` instead of being fed to a model. The
checksums live in their own table, so a cache written before they existed keeps working, unchanged
for older code that may still be using it; such crops get their checksum when first read.
A file SQLite cannot read is a :class:`BenchError` naming the file to delete.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import BenchError
from ..paths import cache_dir

CROP_SHAPE = (112, 112, 3)
CROP_BYTES = 112 * 112 * 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS aligned (
    key TEXT PRIMARY KEY,      -- sha1 of the image file's bytes
    status TEXT NOT NULL,      -- 'ok', 'grayscale' (aligned, excluded from mask splits) or a failure reason
    detail TEXT,
    detector TEXT,
    landmarks BLOB,            -- 5 x 2 float32 in the source image
    crop BLOB                  -- 112 x 112 x 3 uint8, NULL on failure
);
CREATE TABLE IF NOT EXISTS crop_sha1 (
    key TEXT PRIMARY KEY,      -- as in aligned
    sha1 TEXT NOT NULL         -- of aligned.crop's bytes
);
"""
USABLE = ("ok", "grayscale")  # statuses that have a crop


def crop_digest(crop: bytes) -> str:
    return hashlib.sha1(crop).hexdigest()


class DamagedCrops(BenchError):
    """Cached crops whose bytes no longer match their checksum; ``keys`` are their content keys."""

    def __init__(self, path: Path, keys: list[str]):
        self.path, self.keys = path, keys
        super().__init__(
            f"{len(keys)} cached crops in {path} are damaged (checksum mismatch; first key {keys[0]}); delete "
            "the file and run `bench data prepare NAME` again to re-align them"
        )


@dataclass
class Entry:
    key: str
    status: str
    detail: str
    detector: str
    landmarks: np.ndarray | None
    crop: np.ndarray | None


class AlignedStore:
    def __init__(self, aligner_version: str, root: Path | None = None):
        root = root or cache_dir() / "aligned"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{aligner_version}.sqlite"
        with self._guard():
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn SQLite's errors into ones that say which file is the problem and what to do about it."""
        try:
            yield
        except sqlite3.ProgrammingError:  # our misuse (e.g. a closed store), not the file's fault
            raise
        except sqlite3.DatabaseError as exc:
            raise BenchError(_explain(self.path, exc)) from exc

    def close(self) -> None:
        self._db.close()

    def details(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        uniq = list(dict.fromkeys(keys))
        with self._guard():
            for i in range(0, len(uniq), 900):
                chunk = uniq[i : i + 900]
                q = f"SELECT key, status, detail FROM aligned WHERE key IN ({','.join('?' * len(chunk))})"
                out.update({k: (s, d or "") for k, s, d in self._db.execute(q, chunk)})
        return out

    def put_many(self, entries: list[Entry]) -> None:
        rows, digests = [], []
        for e in entries:
            crop = None if e.crop is None else np.ascontiguousarray(e.crop, np.uint8).tobytes()
            landmarks = None if e.landmarks is None else np.asarray(e.landmarks, np.float32).tobytes()
            rows.append((e.key, e.status, e.detail, e.detector, landmarks, crop))
            digests.append((e.key, None if crop is None else crop_digest(crop)))
        with self._guard(), self._db:  # one transaction: all of the batch or none of it
            self._db.executemany(
                "INSERT OR REPLACE INTO aligned (key, status, detail, detector, landmarks, crop) VALUES (?,?,?,?,?,?)", rows)
            self._db.executemany("DELETE FROM crop_sha1 WHERE key = ?", [(k,) for k, d in digests if d is None])
            self._db.executemany("INSERT OR REPLACE INTO crop_sha1 VALUES (?,?)", [kd for kd in digests if kd[1]])

    def landmarks(self, keys: list[str]) -> dict[str, tuple[str, np.ndarray | None]]:
        """Per key: the detector and the 5 x 2 landmarks the crop was cut at (photo pixels, stored as float32;
        None for pre-aligned crops). Keys without a row are absent."""
        uniq = list(dict.fromkeys(keys))
        out: dict[str, tuple[str, np.ndarray | None]] = {}
        with self._guard():
            for i in range(0, len(uniq), 900):
                chunk = uniq[i : i + 900]
                q = f"SELECT key, detector, landmarks FROM aligned WHERE key IN ({','.join('?' * len(chunk))})"
                for key, detector, blob in self._db.execute(q, chunk):
                    pts = None if blob is None else np.frombuffer(blob, np.float32).reshape(5, 2).astype(np.float64)
                    out[key] = (detector or "", pts)
        return out

    def crops(self, keys: list[str]) -> np.ndarray:
        """Crops for keys, in order, as ``N x 112 x 112 x 3`` uint8; every key must have one.

        Raises :class:`DamagedCrops` (listing every damaged key) when a crop fails its checksum."""
        uniq = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        unsigned: list[tuple[str, str]] = []
        damaged: list[str] = []
        with self._guard():
            for i in range(0, len(uniq), 900):
                chunk = uniq[i : i + 900]
                q = (f"SELECT a.key, a.crop, d.sha1 FROM aligned a LEFT JOIN crop_sha1 d ON d.key = a.key "
                     f"WHERE a.key IN ({','.join('?' * len(chunk))}) AND a.crop IS NOT NULL")
                for key, crop, digest in self._db.execute(q, chunk):
                    actual = crop_digest(crop)
                    if len(crop) != CROP_BYTES or (digest is not None and digest != actual):
                        damaged.append(key)
                    elif digest is None:  # written before checksums existed: trusted once, signed now
                        unsigned.append((key, actual))
                    found[key] = crop
            if unsigned:
                try:
                    with self._db:
                        self._db.executemany("INSERT OR REPLACE INTO crop_sha1 VALUES (?,?)", unsigned)
                except sqlite3.OperationalError:  # a read-only or busy cache still serves its crops; signed next time
                    pass
        if damaged:
            raise DamagedCrops(self.path, damaged)
        missing = [k for k in uniq if k not in found]
        if missing:
            raise KeyError(f"{len(missing)} images have no aligned crop (first: {missing[0]})")
        out = np.empty((len(keys), *CROP_SHAPE), np.uint8)
        for i, k in enumerate(keys):
            out[i] = np.frombuffer(found[k], np.uint8).reshape(CROP_SHAPE)
        return out


def _explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (f"the aligned-face cache {path} is locked by another process (sqlite: {text}); wait for the other "
                "bench command to finish, or set BENCH_CACHE to another folder for this one")
    if "readonly" in text or "unable to open" in text:
        return (f"cannot write the aligned-face cache {path} (sqlite: {text}); make its folder writable or set "
                "BENCH_CACHE to a writable folder")
    companions = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    return (f"the aligned-face cache {path} is damaged or not a cache file (sqlite: {text}); delete "
            f"{' and '.join(map(str, companions or [path]))} and run `bench data prepare NAME` again: it only holds "
            "crops re-made from the photos (the whole of LFW takes ~25 minutes on 2 cores)")
