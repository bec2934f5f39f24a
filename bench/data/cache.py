"""On-disk store of aligned crops, keyed by image content and aligner version.

One SQLite file per aligner version; one row per distinct image content (SHA-1 of the file bytes),
holding the crop or the reason it failed. Content keys make the cache survive moved/renamed copies and
re-align only what changed; SQLite transactions make every batch of writes atomic, so an interrupted
``prepare`` resumes where it stopped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..paths import cache_dir

CROP_SHAPE = (112, 112, 3)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS aligned (
    key TEXT PRIMARY KEY,      -- sha1 of the image file's bytes
    status TEXT NOT NULL,      -- 'ok', 'grayscale' (aligned, excluded from mask splits) or a failure reason
    detail TEXT,
    detector TEXT,
    landmarks BLOB,            -- 5 x 2 float32 in the source image
    crop BLOB                  -- 112 x 112 x 3 uint8, NULL on failure
)
"""
USABLE = ("ok", "grayscale")  # statuses that have a crop


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
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def details(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), 900):
            chunk = uniq[i : i + 900]
            q = f"SELECT key, status, detail FROM aligned WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({k: (s, d or "") for k, s, d in self._db.execute(q, chunk)})
        return out

    def put_many(self, entries: list[Entry]) -> None:
        rows = [
            (
                e.key, e.status, e.detail, e.detector,
                None if e.landmarks is None else np.asarray(e.landmarks, np.float32).tobytes(),
                None if e.crop is None else np.ascontiguousarray(e.crop, np.uint8).tobytes(),
            )
            for e in entries
        ]
        with self._db:  # one transaction: all of the batch or none of it
            self._db.executemany("INSERT OR REPLACE INTO aligned VALUES (?,?,?,?,?,?)", rows)

    def crops(self, keys: list[str]) -> np.ndarray:
        """Crops for keys, in order, as ``N x 112 x 112 x 3`` uint8; every key must have one."""
        uniq = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        for i in range(0, len(uniq), 900):
            chunk = uniq[i : i + 900]
            q = f"SELECT key, crop FROM aligned WHERE key IN ({','.join('?' * len(chunk))}) AND crop IS NOT NULL"
            found.update(dict(self._db.execute(q, chunk)))
        missing = [k for k in uniq if k not in found]
        if missing:
            raise KeyError(f"{len(missing)} images have no aligned crop (first: {missing[0]})")
        out = np.empty((len(keys), *CROP_SHAPE), np.uint8)
        for i, k in enumerate(keys):
            out[i] = np.frombuffer(found[k], np.uint8).reshape(CROP_SHAPE)
        return out
