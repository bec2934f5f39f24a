"""Faces of a protocol split, and recognizer features of clean faces cached per (target, file list).

A feature file ``X.npy`` has its SHA-1 beside it in ``X.npy.sha1`` (``sha1sum -c`` reads it), checked on
every read: a replaced or damaged file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .atomic import atomic_write
from .data import open_dataset, prepare
from .data.align import ALIGNER_VERSION
from .data.splits import Split
from .errors import BenchError
from .paths import cache_dir
from .stage_clock import stage
from .zoo.base import ModelCard, Recognizer, weights_in_use


def model_fingerprint(card: ModelCard) -> str:
    """Identifies a model's weights and preprocessing: cached features and results follow them."""
    files = ",".join(f.sha256[:12] for f in weights_in_use(card)) or "no-files"
    prep = card.extra.get("fingerprint") or card.extra.get("preprocessing") or ""
    return f"{files}/{hashlib.sha1(str(prep).encode()).hexdigest()[:8]}"


class FaceSource:
    """Aligned crops of the images a run needs, loaded (and aligned if needed) once."""

    def __init__(self, dataset: str, files: list[str], progress: bool = True):
        self.prepared = prepare(open_dataset(dataset), only=sorted(set(files)), progress=progress)
        self.dataset = dataset
        self._cache: dict[str, np.ndarray] = {}

    def faces(self, files: list[str]) -> np.ndarray:
        missing = [f for f in files if f not in self._cache]
        if missing:
            for f, crop in zip(missing, self.prepared.faces(missing)):
                self._cache[f] = crop
        return np.stack([self._cache[f] for f in files]) if files else np.empty((0, 112, 112, 3), np.uint8)


@dataclass(frozen=True)
class Layer:
    """Another output of a model than its embedding (e.g. the input of its last block, flattened):
    ``fn`` maps canonical float faces to ``N x dim``; ``tag`` names it in cache paths."""

    tag: str
    dim: int
    fn: Callable[[Any], Any]


def feature_cache_path(model: Recognizer, dataset: str, files: list[str], tag: str = "") -> Path:
    parts = [model.name, model_fingerprint(model.card), ALIGNER_VERSION, dataset, *files] + ([f"layer:{tag}"] if tag else [])
    h = hashlib.sha1("\n".join(parts).encode())
    return cache_dir() / "features" / model.name / f"{tag + '-' if tag else ''}{h.hexdigest()[:20]}.npy"


def clean_features(model: Recognizer, source: FaceSource, files: list[str], batch_size: int = 64, progress: bool = True,
                   layer: Layer | None = None) -> np.ndarray:
    """Features of clean faces (the embedding, or ``layer``'s output), computed once per (model, weights,
    aligner, files, layer) and cached on disk."""
    path = feature_cache_path(model, source.dataset, files, layer.tag if layer else "")
    cached = _read_checked(path, (len(files), layer.dim if layer else model.embedding_dim))
    if cached is not None:
        return cached
    faces = source.faces(files)
    with stage(f"embed:{model.name}", items=len(files)):
        feats = (layer_uint8(layer, faces, batch_size, progress, model.device) if layer else
                 embed_uint8(model, faces, batch_size, progress)).astype(np.float32)
    _write_checked(path, feats)
    return feats


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha1")


def _read_checked(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached features at ``path`` if they are intact and of ``shape``, else None (recompute them).

    A file of at least MMAP_BYTES is memory-mapped, read-only, from the very file handle whose bytes were
    checksummed (a large gallery's features are paged in on use, never copied whole into memory)."""
    if not path.exists():
        return None
    digest_file = _digest_path(path)
    recorded = (digest_file.read_text().split() or [""])[0] if digest_file.exists() else None
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha1")
        if recorded is not None and recorded != digest.hexdigest():
            return _stale(path, "its bytes do not match the checksum in " + digest_file.name + " (replaced or damaged)")
        f.seek(0)
        try:
            feats = _mapped(f) if path.stat().st_size >= MMAP_BYTES else np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            return _stale(path, f"it cannot be read as .npy ({exc})")
    if feats.shape != shape or feats.dtype != np.float32 or not _all_finite(feats):
        return _stale(path, f"it holds {feats.dtype} {feats.shape}, expected finite float32 {shape}")
    if recorded is None:  # written before checksums existed: it passed the checks above, so sign it now
        _write_digest_of(path, digest.hexdigest())
    return feats


MMAP_BYTES = 64 * 2**20  # feature files this large (a ~65k x 256 gallery) are memory-mapped, not loaded


def _mapped(f) -> np.ndarray:
    """A read-only memory map of the .npy array in the open file ``f`` (header checked by numpy)."""
    fmt = np.lib.format
    read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(f))
    if read_header is None:
        raise ValueError("unsupported .npy format version")
    shape, fortran, dtype = read_header(f)
    if dtype.hasobject:
        raise ValueError("object arrays cannot be mapped")
    return np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=shape, order="F" if fortran else "C")


def _all_finite(feats: np.ndarray, rows: int = 65_536) -> bool:
    # in blocks of rows: a mapped file is checked without a full-size temporary
    return all(np.isfinite(feats[i : i + rows]).all() for i in range(0, len(feats), rows))


def _stale(path: Path, why: str) -> None:
    warnings.warn(f"feature cache {path}: {why}; recomputing it", stacklevel=3)
    return None


def _write_checked(path: Path, feats: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, feats, allow_pickle=False)
    data = buf.getvalue()
    try:
        # features first, checksum second: a crash in between leaves a file without a checksum, which the
        # reader checks for shape and finiteness and then signs; a stale checksum only forces a recompute
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
        _write_digest(path, data)
    except OSError as exc:
        raise BenchError(f"cannot write the feature cache {path} ({exc}); make {path.parent} writable, set BENCH_CACHE "
                         "to a writable folder, or delete the file if it is in the way") from exc


def _write_digest(path: Path, data: bytes) -> None:
    _write_digest_of(path, hashlib.sha1(data).hexdigest())


def _write_digest_of(path: Path, hexdigest: str) -> None:
    atomic_write(_digest_path(path), lambda tmp: tmp.write_text(f"{hexdigest}  {path.name}\n"))


def embed_uint8(model: Recognizer, faces: np.ndarray, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    import torch

    return model.embed_all(torch.from_numpy(np.ascontiguousarray(faces)), batch_size=batch_size, progress=progress).numpy()


def layer_uint8(layer: Layer, faces: np.ndarray, batch_size: int = 64, progress: bool = False, device=None) -> np.ndarray:
    """``layer`` on uint8 crops in batches, without gradients: float32 ``N x layer.dim`` on the CPU."""
    import torch
    from tqdm.auto import tqdm

    from .zoo.base import to_canonical

    out = [np.empty((0, layer.dim), np.float32)]
    with torch.no_grad():
        for i in tqdm(range(0, len(faces), batch_size), desc=f"features {layer.tag}", disable=not progress, leave=False):
            batch = to_canonical(torch.from_numpy(np.ascontiguousarray(faces[i : i + batch_size]))).to(device or "cpu")
            out.append(layer.fn(batch).float().cpu().numpy())
    return np.concatenate(out)


def split_files(split: Split, role: str) -> dict[str, list[str]]:
    return {ident: split.files(ident, role) for ident in split.identities()}
