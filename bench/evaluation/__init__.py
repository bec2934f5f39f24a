"""``bench evaluate``: score any tool's protected photos like a method (see :mod:`.run`)."""

from .run import DEFAULT_PROTOCOLS, evaluate_folder

__all__ = ["DEFAULT_PROTOCOLS", "evaluate_folder"]
