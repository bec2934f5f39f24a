"""Trained generator checkpoints: where they live, their cards, and verified loading.

A checkpoint is ``<root>/<source>/<name>.safetensors`` (generator weights; the stage-I file also holds
the discriminator that stage II starts from) beside ``<name>.json``, its card: the training
configuration, steps, wall time, final losses, validation protection, the surrogate's fingerprint and
the sha256 of the weights. ``<root>`` is ``methods/weights`` (shipped with the package, written by
``bench train``) or ``$BENCH_GENERATORS``.

Loading checks the card's sha256 first: a missing or altered file is an error naming the file and
the ``bench train`` command that makes it. safetensors holds only tensors, so a checkpoint cannot
run code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bench.atomic import atomic_write
from bench.errors import WeightFileError
from bench.zoo.weights import sha256_of

SHIPPED = Path(__file__).resolve().parent / "weights"


def checkpoint_root() -> Path:
    env = os.environ.get("BENCH_GENERATORS")
    return Path(env) if env else SHIPPED


def train_command(method: str, source: str) -> str:
    return f"bench train {method} --source {source}"


@dataclass(frozen=True)
class Checkpoint:
    """One trained network: ``name`` is the training stage it came from (``stage1``, ``advcloak-convex``, ``gap``...)."""

    source: str
    name: str
    trains_with: str  # the method name whose `bench train` writes it
    root: Path | None = None

    @property
    def folder(self) -> Path:
        return (self.root or checkpoint_root()) / self.source

    @property
    def weights_path(self) -> Path:
        return self.folder / f"{self.name}.safetensors"

    @property
    def card_path(self) -> Path:
        return self.folder / f"{self.name}.json"

    def exists(self) -> bool:
        return self.weights_path.is_file() and self.card_path.is_file()

    def _missing(self, what: Path) -> WeightFileError:
        return WeightFileError(f"trained checkpoint {what} is missing; make it with `{train_command(self.trains_with, self.source)}`")

    def card(self) -> dict:
        if not self.card_path.is_file():
            raise self._missing(self.card_path)
        try:
            card = json.loads(self.card_path.read_text())
            if not isinstance(card, dict):
                raise ValueError("not a JSON object")
            return card
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise WeightFileError(f"checkpoint card {self.card_path} is unreadable ({exc}); "
                                  f"retrain with `{train_command(self.trains_with, self.source)}`") from None

    def sha256(self) -> str:
        """The verified sha256 of the weights (the card's, after checking the file against it)."""
        card = self.card()
        if not self.weights_path.is_file():
            raise self._missing(self.weights_path)
        digest = sha256_of(self.weights_path)
        if digest != card.get("sha256"):
            raise WeightFileError(
                f"trained checkpoint {self.weights_path} does not match its card {self.card_path.name} "
                f"(sha256 {digest[:16]}..., card says {str(card.get('sha256'))[:16]}...): it was altered or is "
                f"half-written; retrain with `{train_command(self.trains_with, self.source)}`")
        return digest

    def load(self, prefix: str = "generator.") -> dict[str, torch.Tensor]:
        """Verified float32 tensors whose names start with ``prefix`` (prefix removed)."""
        self.sha256()
        try:  # the sha256 matches, yet the bytes may not be a safetensors file (a card edited to match garbage)
            tensors = load_file(str(self.weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightFileError(f"trained checkpoint {self.weights_path} is not a readable safetensors file "
                                  f"({type(exc).__name__}: {exc}); retrain with "
                                  f"`{train_command(self.trains_with, self.source)}`") from None
        out = {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        if not out:
            raise WeightFileError(f"trained checkpoint {self.weights_path} holds no '{prefix}*' tensors")
        return out

    def save(self, tensors: dict[str, torch.Tensor], card: dict, half: bool = True) -> Path:
        """Write weights (fp16 by default: the shipped files stay small) then the card with their sha256;
        both atomically, the card last, so a half-written pair never verifies."""
        stored = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu() for k, v in tensors.items()}
        atomic_write(self.weights_path, lambda tmp: save_file(stored, str(tmp)))
        card = {**card, "sha256": sha256_of(self.weights_path), "dtype": "float16" if half else "float32"}
        atomic_write(self.card_path, lambda tmp: tmp.write_text(json.dumps(card, indent=1, sort_keys=True, default=str) + "\n"))
        return self.weights_path
