"""The recognizer registry: ``@register_recognizer(card)`` and ``create_recognizer(name)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from ..atomic import atomic_write
from ..registry import Registry
from .base import ModelCard, Recognizer

RECOGNIZERS: Registry[Recognizer] = Registry("recognizer", "bench.recognizers")
METADATA_DIR = Path(__file__).resolve().parent / "metadata"


def register_recognizer(card: ModelCard) -> Callable:
    """Register a factory ``f(card, **kwargs) -> Recognizer`` under ``card.name``."""

    def decorator(factory: Callable[..., Recognizer]):
        RECOGNIZERS.add(card.name, factory, card=card)
        return factory

    return decorator


def card_of(name: str) -> ModelCard:
    return RECOGNIZERS.entry(name).info["card"]


def create_recognizer(name: str, device: str | torch.device = "cpu", **kwargs) -> Recognizer:
    entry = RECOGNIZERS.entry(name)
    model = entry.factory(entry.info["card"], **kwargs)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)  # the zoo's models are frozen; gradients flow to the input only
    return model.to(device)


def recognizer_names(differentiable: bool | None = None) -> list[str]:
    names = RECOGNIZERS.names()
    if differentiable is None:
        return names
    return [n for n in names if card_of(n).differentiable == differentiable]


def load_metadata(name: str) -> dict:
    """Committed, measured facts about a model (RobustBench-style): LFW accuracy and how it was measured."""
    path = METADATA_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_metadata(name: str, data: dict) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(METADATA_DIR / f"{name}.json", lambda tmp: tmp.write_text(text))
