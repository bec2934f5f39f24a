"""The result store: one JSON file per finished cell, one safetensors file per crafted mask set.

Every write goes to a temporary file first and is renamed into place (atomic on POSIX), so a run
killed at any moment leaves only whole cells; a re-run skips the cells already present and nothing
is lost or counted twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .paths import results_dir
from .provenance import config_hash

CELL_KEY_FIELDS = ("split", "source", "method", "method_config", "target", "weights", "budget", "seed", "n_inference", "protocol")


class ResultStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else results_dir()
        self.cells = self.root / "cells"
        self.masks = self.root / "masks"

    @staticmethod
    def cell_id(key: dict) -> str:
        return config_hash({k: key[k] for k in CELL_KEY_FIELDS})

    def _cell_path(self, key: dict) -> Path:
        return self.cells / f"{self.cell_id(key)}.json"

    def has(self, key: dict) -> bool:
        return self._cell_path(key).exists()

    def put(self, key: dict, row: dict) -> None:
        atomic_write(self._cell_path(key), lambda p: p.write_text(json.dumps({**row, "cell": self.cell_id(key)}, indent=1, default=str)))

    def rows(self) -> list[dict]:
        out = []
        for path in sorted(self.cells.glob("*.json")):
            out.append(json.loads(path.read_text()))
        return out

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    # masks: {identity: tensor}, plus JSON-able metadata (craft times, config)
    def _mask_path(self, mask_key: dict) -> Path:
        return self.masks / f"{config_hash(mask_key)}.safetensors"

    def load_masks(self, mask_key: dict) -> tuple[dict[str, torch.Tensor], dict] | None:
        path = self._mask_path(mask_key)
        if not path.exists():
            return None
        meta = json.loads(path.with_suffix(".json").read_text())
        return load_file(path), meta

    def save_masks(self, mask_key: dict, masks: dict[str, torch.Tensor], meta: dict) -> Path:
        path = self._mask_path(mask_key)
        # metadata first: a tensor file without its metadata must not count as done
        atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps({"key": mask_key, **meta}, indent=1, default=str)))
        atomic_write(path, lambda p: save_file({k: v.contiguous() for k, v in masks.items()}, str(p)))
        return path
