"""The harness in stages, each with typed inputs and outputs:

``bench run`` -> :mod:`bench.runner` (the plan: which cells) -> :mod:`.bank` (masks: crafted or loaded)
-> :mod:`.protector` (budget, uint8 as saved, :mod:`.transforms`; or :mod:`.realistic`: the mask in the
full photo, saved, re-detected by the attacker) -> :mod:`.evaluator` (a target's clean gallery,
embeddings) -> :mod:`.protocols` (scores; :mod:`.adaptive` adds attackers who learn to undo masks, the
trained ones on their own protected people, :mod:`.attacker`)
-> :class:`bench.store.ResultStore` -> :mod:`bench.reporting`.
"""

from . import adaptive  # noqa: F401  (registers the adaptive-ridge, -head and -finetune protocols)
from . import realistic  # noqa: F401  (registers the realistic delivery among the transforms)
