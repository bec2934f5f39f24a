"""The harness in stages, each with typed inputs and outputs:

``bench run`` -> :mod:`bench.runner` (the plan: which cells) -> :mod:`.bank` (masks: crafted or loaded)
-> :mod:`.protector` (budget, uint8 as saved, :mod:`.transforms`) -> :mod:`.evaluator` (a target's clean
gallery, embeddings) -> :mod:`.protocols` (scores; :mod:`.adaptive` adds an attacker who learns to undo
masks) -> :class:`bench.store.ResultStore` -> :mod:`bench.report`.
"""

from . import adaptive  # noqa: F401  (registers the adaptive-ridge protocol)
