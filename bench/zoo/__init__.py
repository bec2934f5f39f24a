"""The face-recognizer zoo. Importing this package registers the built-in models."""

from .base import CANONICAL_SIZE, ModelCard, Recognizer, to_canonical
from .registry import RECOGNIZERS, card_of, create_recognizer, load_metadata, recognizer_names, register_recognizer
from .weights import WeightFile

# built-in models register themselves on import
from . import builtin  # noqa: E402,F401

__all__ = [
    "CANONICAL_SIZE", "ModelCard", "Recognizer", "to_canonical", "RECOGNIZERS", "card_of",
    "create_recognizer", "load_metadata", "recognizer_names", "register_recognizer", "WeightFile",
]
