"""Prepare a dataset once: read every photo, detect and align its face, cache the crop, report failures."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write
from ..errors import BenchError
from ..paths import ALIGN_AUTO_ENV, reports_dir
from .align import CANONICAL, Aligner
from .cache import USABLE, AlignedStore, DamagedCrops, Entry
from .images import BadImage, decode_rgb, file_digest
from .readers import Failure, FolderPerIdentity, ImageRecord
from ..stage_clock import stage

WRITE_EVERY = 128  # crops per transaction: a crash (power loss) loses at most this much work
# Alignment runs in BENCH_ALIGN_WORKERS worker processes (the `bench` command sets one per core; library calls
# default to one, in-process) once a batch is large enough to repay starting them (MTCNN loads in each). Each
# worker detects on one thread, as the serial path does, so every crop is bit-identical to the serial one
# (tests/test_align_parallel.py checks it).
PARALLEL_FROM = 200


@dataclass
class PreparedDataset:
    """A dataset whose every image has been looked at: crops for the usable ones, reasons for the rest."""

    name: str
    images_root: Path
    records: list[ImageRecord]
    keys: list[str]  # content key per record ('' if the file could not be read at all)
    status: list[str]
    detail: list[str]
    empty_identities: list[str]
    store: AlignedStore
    rejected: list[Failure] = field(default_factory=list)  # files never read (names that cannot be used)
    pre_aligned: bool = False
    aligner: Aligner | None = field(default=None, repr=False)  # to re-make damaged cached crops
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._index = {r.relpath: i for i, r in enumerate(self.records)}

    @property
    def identities(self) -> list[str]:
        return sorted({r.identity for r in self.records})

    def usable(self, include_grayscale: bool = True) -> list[ImageRecord]:
        ok = USABLE if include_grayscale else ("ok",)
        return [r for r, s in zip(self.records, self.status) if s in ok]

    def status_of(self, relpath: str) -> str:
        return self.status[self._index[relpath]]

    def content_keys(self, relpaths: list[str]) -> list[str]:
        """The cache keys (SHA-1 of the photo bytes) of images that have an aligned face; KeyError otherwise."""
        keys = []
        for p in relpaths:
            i = self._index.get(p)
            if i is None:
                raise KeyError(f"{self.name}: no image {p!r}")
            if self.status[i] not in USABLE:
                raise KeyError(f"{self.name}: {p!r} has no aligned face ({self.status[i]})")
            keys.append(self.keys[i])
        return keys

    def landmarks(self, relpaths: list[str]) -> list[tuple[str, np.ndarray | None]]:
        """(detector, 5 x 2 landmarks in the photo) per image, in order: the geometry its crop was cut at
        (``bench.pipeline.alignment_matrix`` turns them into the similarity); None for pre-aligned crops."""
        keys = self.content_keys(relpaths)
        found = self.store.landmarks(keys)
        return [found[k] for k in keys]

    def faces(self, relpaths: list[str]) -> np.ndarray:
        """Aligned crops (``N x 112 x 112 x 3`` uint8) of the given images, in order."""
        keys = self.content_keys(relpaths)
        try:
            return self.store.crops(keys)
        except DamagedCrops as damaged:  # re-made from the photos, which are still here
            bad = set(damaged.keys)
            self._realign([p for p, k in zip(relpaths, keys) if k in bad])
            return self.store.crops(keys)

    def _realign(self, relpaths: list[str]) -> None:
        entries = []
        for rel in dict.fromkeys(relpaths):
            i = self._index[rel]
            try:
                data = (self.images_root / rel).read_bytes()
            except OSError:
                data = b""
            if file_digest(data) != self.keys[i]:
                raise BenchError(
                    f"the cached crop of {self.name} {rel!r} in {self.store.path} is damaged (checksum mismatch) and the "
                    f"photo is gone or changed since, so it cannot be re-made; delete {self.store.path} and run "
                    f"`bench data prepare {self.name}` again"
                )
            self.aligner = self.aligner or Aligner()
            entries.append(_process(data, rel, self.pre_aligned, self.aligner))
        self.store.put_many(entries)
        warnings.warn(f"{len(entries)} cached crops of {self.name} in {self.store.path} were damaged (checksum "
                      "mismatch) and have been re-aligned from their photos", stacklevel=3)

    def failures(self) -> list[Failure]:
        out = [Failure(f"{ident}/", "empty identity folder") for ident in self.empty_identities]
        out += self.rejected
        out += [Failure(r.relpath, s, d) for r, s, d in zip(self.records, self.status, self.detail) if s != "ok"]
        return out

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for s in self.status:
            counts[s] = counts.get(s, 0) + 1
        for f in self.rejected:
            counts[f.reason] = counts.get(f.reason, 0) + 1
        failed = sum(v for k, v in counts.items() if k not in USABLE and k != "pending")
        return {
            "identities": len(self.identities),
            "images": len(self.records) + len(self.rejected),
            "aligned": sum(counts.get(s, 0) for s in USABLE),
            "failed": failed,
            "grayscale": counts.get("grayscale", 0),
            "pending": counts.get("pending", 0),
            "empty_identity_folders": len(self.empty_identities),
            "failure_reasons": {k: v for k, v in sorted(counts.items()) if k not in USABLE and k != "pending"},
        }

    def write_report(self, path: Path | None = None) -> Path:
        path = path or reports_dir() / "data" / f"{self.name}-failures.csv"
        def write(tmp: Path) -> None:
            # backslashreplace: a report is never lost to one odd character (names are escaped already)
            with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
                w = csv.writer(f)
                w.writerow(["path", "reason", "detail"])
                for fl in self.failures():
                    w.writerow([fl.path, fl.reason, fl.detail])

        atomic_write(path, write)
        return path


def _read(dataset: FolderPerIdentity, rec: ImageRecord) -> bytes:
    try:
        return (dataset.images_root / rec.relpath).read_bytes()
    except OSError:
        return b""


def _process(data: bytes, relpath: str, pre_aligned: bool, aligner: Aligner) -> Entry:
    key = file_digest(data)
    try:
        rgb, gray = decode_rgb(data, relpath)
        if pre_aligned:
            crop = rgb if rgb.shape[:2] == (CANONICAL, CANONICAL) else cv2.resize(rgb, (CANONICAL, CANONICAL), interpolation=cv2.INTER_AREA)
            landmarks, detector = None, "pre-aligned"
        else:
            aligned = aligner.align(rgb)
            crop, landmarks, detector = aligned.crop, aligned.landmarks, aligned.detector
    except BadImage as bad:
        return Entry(key, bad.reason, bad.detail, "", None, None)
    status = "grayscale" if gray else "ok"
    return Entry(key, status, "kept for verification, excluded from mask splits" if gray else "", detector, landmarks, crop)


def prepare(
    dataset: FolderPerIdentity,
    aligner: Aligner | None = None,
    only: list[str] | None = None,
    progress: bool = True,
    dry: bool = False,
    write_every: int = WRITE_EVERY,
) -> PreparedDataset:
    """Align every image of ``dataset`` (or only the relpaths in ``only``), reusing cached crops.

    ``dry=True`` looks at the cache without aligning anything (unprocessed images show as 'pending').
    """
    aligner = aligner or Aligner()
    scan = dataset.scan()
    records = scan.records
    rejected = scan.rejected
    if only is not None:
        wanted = set(only)
        records = [r for r in records if r.relpath in wanted]
        rejected = []  # a caller naming its files (a split) never names one that cannot be read
        missing = wanted - {r.relpath for r in records}
        if missing:
            raise KeyError(f"{dataset.name}: {len(missing)} requested images do not exist (first: {sorted(missing)[0]})")
    store = AlignedStore(aligner.version)
    keys = [file_digest(data) if data else "" for data in map(lambda r: _read(dataset, r), tqdm(
        records, desc=f"hash {dataset.name}", disable=not progress, leave=False, mininterval=1))]
    known = store.details([k for k in keys if k])
    todo = [i for i, k in enumerate(keys) if k and k not in known]
    if todo and not dry:
        with stage(f"align:{dataset.name}", items=len(todo)):
            _align_all(dataset, [records[i] for i in todo], aligner, store, write_every, progress)
        known = store.details([k for k in keys if k])
    status, detail = [], []
    for k, rec in zip(keys, records):
        if not k:
            status.append("unreadable"); detail.append("empty or unreadable file")
        else:
            s, d = known.get(k, ("pending", "not aligned yet"))
            status.append(s); detail.append(d)
    return PreparedDataset(dataset.name, dataset.images_root, records, keys, status, detail, scan.empty_identities, store,
                           rejected, dataset.pre_aligned, aligner)


def align_workers(n_photos: int) -> int:
    """How many processes align ``n_photos`` photos: BENCH_ALIGN_WORKERS if set (at most one per photo); else, for
    a batch of at least PARALLEL_FROM photos, one per core when the `bench` command set BENCH_ALIGN_AUTO (a
    library call aligns in-process); else 1."""
    env = os.environ.get("BENCH_ALIGN_WORKERS", "")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise BenchError(f"BENCH_ALIGN_WORKERS must be a whole number >= 1, got {env!r}")
        return min(int(env), max(n_photos, 1))
    return one_per_core() if n_photos >= PARALLEL_FROM and os.environ.get(ALIGN_AUTO_ENV) else 1


# more alignment processes than this stop paying (MTCNN's own threads, disk); the profile's floor uses it too
MAX_ALIGN_WORKERS = 8


def one_per_core(cores: int | None = None) -> int:
    return max(1, min(cores or os.cpu_count() or 1, MAX_ALIGN_WORKERS))


_WORKER: dict = {}


def _pool_context():
    """spawn, never fork: forking a process that runs threads (torch's, tqdm's, a test runner's) can leave a
    worker waiting forever on a lock held at the fork (seen here once in a full test run). A spawned worker
    imports the caller's main module, so a script that sets BENCH_ALIGN_WORKERS needs Python's usual
    ``if __name__ == "__main__":`` guard; the `bench` command and notebooks have it or need none."""
    return mp.get_context("spawn")


def _worker_init(pre_aligned: bool) -> None:
    _WORKER.update(aligner=Aligner(), pre_aligned=pre_aligned)


def _worker_process(item: tuple[bytes, str]) -> Entry:
    data, relpath = item
    return _process(data, relpath, _WORKER["pre_aligned"], _WORKER["aligner"])


def _align_all(dataset: FolderPerIdentity, todo: list[ImageRecord], aligner: Aligner, store: AlignedStore,
               write_every: int, progress: bool) -> None:
    """Align ``todo`` into ``store`` in batched transactions. However the loop stops (Ctrl-C, or a photo
    that breaks the aligner), the crops made so far are written first, so a re-run redoes none of them.
    With more than one worker (``align_workers``) the photos go to a process pool in order; only the default
    aligner can be rebuilt in a worker, so a caller's own aligner always runs here."""
    workers = align_workers(len(todo)) if type(aligner) is Aligner and aligner.detectors_are_default else 1
    batch: list[Entry] = []
    pool = None
    try:
        if workers > 1:
            pool = _pool_context().Pool(workers, _worker_init, (dataset.pre_aligned,))
            items = ((_read(dataset, rec), rec.relpath) for rec in todo)
            results = pool.imap(_worker_process, items, chunksize=4)
        else:
            results = (_process(_read(dataset, rec), rec.relpath, dataset.pre_aligned, aligner) for rec in todo)
        bar = tqdm(total=len(todo), desc=f"align {dataset.name}" + (f" ({workers} processes)" if workers > 1 else ""),
                   disable=not progress, unit="img")
        for n, rec in enumerate(todo):
            try:
                batch.append(next(results))
            except BenchError:  # set-up problems (e.g. detector weights) name their own fix
                raise
            except Exception as exc:  # not a known kind of bad photo (those are BadImage): a bug to report
                raise BenchError(
                    f"{dataset.name}: aligning {dataset.images_root / rec.relpath} failed ({type(exc).__name__}: {exc}); "
                    f"the {n} photos processed before it are cached. Move that file out of the dataset folder and run "
                    "the same command again to go on without it, and please report the error"
                ) from exc
            bar.update(1)
            if len(batch) >= write_every:
                done, batch = batch, []
                store.put_many(done)
        bar.close()
    finally:
        if pool is not None:
            pool.terminate()
        store.put_many(batch)
