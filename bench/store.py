"""The result store: one JSON file per finished cell, one safetensors file per crafted mask set.

Every write goes to a temporary file first and is renamed into place (atomic on POSIX), so a run
killed at any moment leaves only whole cells; a re-run skips the cells already present and nothing
is lost or counted twice. A file that cannot be read back (damaged disk, hand edit, a copy cut short)
is reported, moved aside to ``quarantine/`` (kept for inspection, never deleted) and recomputed.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .paths import results_dir
from .provenance import config_hash

CELL_KEY_FIELDS = ("split", "split_hash", "gallery_hash", "source", "method", "method_config", "target", "weights",
                   "budget", "seed", "n_inference", "transforms", "protocol")


# Fields holding a rate (0-1): a cell whose rate is NaN or infinite is damaged, never a blank in a table.
RATE_SUFFIXES = ("_protection", "_accuracy", "_accuracy_static", "_rate")


def _finite_or_none(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


class DamagedResult(UserWarning):
    """A stored cell or mask set could not be read; it was moved aside and will be recomputed."""


class ResultStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else results_dir()
        self.cells = self.root / "cells"
        self.masks = self.root / "masks"
        self.quarantine = self.root / "quarantine"

    @staticmethod
    def cell_id(key: dict) -> str:
        return config_hash({k: key.get(k, "") for k in CELL_KEY_FIELDS})

    def _cell_path(self, key: dict) -> Path:
        return self.cells / f"{self.cell_id(key)}.json"

    def _set_aside(self, paths: list[Path], why: str) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = []
        for path in paths:
            if path.exists():
                dest = self.quarantine / f"{stamp}-{path.name}"
                path.replace(dest)
                moved.append(dest)
        warnings.warn(DamagedResult(f"{paths[0]}: {why}; moved to {', '.join(map(str, moved)) or '(gone)'}; it will be recomputed"),
                      stacklevel=3)

    def _read_cell(self, path: Path) -> dict | None:
        """The cell's row, or None after setting a damaged file aside."""
        try:
            row = json.loads(path.read_text())
            if not isinstance(row, dict) or row.get("cell") != path.stem:
                raise ValueError(f"not a cell row for {path.stem}")
            bad = [k for k in row if k.endswith(RATE_SUFFIXES) and not _finite_or_none(row[k])]
            if bad:  # a table would show it as a blank, as if the cell were never measured
                raise ValueError(f"rate {bad[0]} is {row[bad[0]]!r}, not a finite number")
            return row
        except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
            self._set_aside([path], f"unreadable result cell ({type(err).__name__}: {err})")
            return None

    def has(self, key: dict) -> bool:
        path = self._cell_path(key)
        return path.exists() and self._read_cell(path) is not None

    def put(self, key: dict, row: dict) -> None:
        atomic_write(self._cell_path(key), lambda p: p.write_text(json.dumps({**row, "cell": self.cell_id(key)}, indent=1, default=str)))

    def rows(self) -> list[dict]:
        rows = (self._read_cell(path) for path in sorted(self.cells.glob("*.json")))
        return [r for r in rows if r is not None]

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    # masks: {identity: tensor}, plus JSON-able metadata (craft times, config)
    def _mask_path(self, mask_key: dict) -> Path:
        return self.masks / f"{config_hash(mask_key)}.safetensors"

    def load_masks(self, mask_key: dict, expected: list[str] | None = None) -> tuple[dict[str, torch.Tensor], dict] | None:
        """The stored masks and metadata, or None (not crafted yet, or damaged: then set aside).
        ``expected``: the identities the set must hold."""
        path = self._mask_path(mask_key)
        meta_path = path.with_suffix(".json")
        if not path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            masks = load_file(path)
            missing = sorted(set(expected or []) - set(masks))
            if missing:
                raise ValueError(f"no mask for {len(missing)} identities (first: {missing[0]})")
            bad = [k for k, v in masks.items() if not torch.isfinite(v).all()]
            if bad:
                raise ValueError(f"non-finite mask for {bad[0]}")
        except (OSError, UnicodeDecodeError, ValueError, SafetensorError) as err:
            self._set_aside([path, meta_path], f"unreadable mask set ({type(err).__name__}: {err})")
            return None
        return masks, meta

    def save_masks(self, mask_key: dict, masks: dict[str, torch.Tensor], meta: dict) -> Path:
        path = self._mask_path(mask_key)
        # metadata first: a tensor file without its metadata must not count as done
        atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps({"key": mask_key, **meta}, indent=1, default=str)))
        atomic_write(path, lambda p: save_file({k: v.contiguous() for k, v in masks.items()}, str(p)))
        return path

    # profiles: where each run's time went (bench.stage_clock), one JSON per run, newest last by name
    def put_profile(self, profile: dict) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.root / "profiles" / f"run-{stamp}-{time.time_ns() % 10**9:09d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: p.write_text(json.dumps(profile, indent=1, default=str)))
        return path

    def profiles(self) -> list[dict]:
        """Every stored run profile, oldest first (a damaged one is skipped with a warning)."""
        out = []
        for path in sorted((self.root / "profiles").glob("run-*.json")):
            try:
                out.append({"file": path.name, **json.loads(path.read_text())})
            except (OSError, ValueError) as exc:
                warnings.warn(f"run profile {path} cannot be read ({exc}); skipped", DamagedResult, stacklevel=2)
        return out
