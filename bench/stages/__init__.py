"""The harness in stages, each with typed inputs and outputs:

``bench run`` -> :mod:`bench.runner` (the plan: which cells) -> :mod:`.bank` (masks: crafted or loaded)
-> :mod:`.protector` (budget, uint8 as saved, :mod:`.transforms`; or :mod:`.realistic`: the mask in the
full photo, saved, re-detected by the attacker) -> :mod:`.evaluator` (a target's clean gallery,
embeddings) -> :mod:`.protocols` (scores; :mod:`.adaptive` adds an attacker who learns to undo masks)
-> :class:`bench.store.ResultStore` -> :mod:`bench.report`.
"""

from . import adaptive  # noqa: F401  (registers the adaptive-ridge protocol)
from . import realistic  # noqa: F401  (registers the realistic delivery among the transforms)
