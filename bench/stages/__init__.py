"""The harness in stages, each with typed inputs and outputs:

``bench run`` -> :mod:`plan` (which cells) -> :mod:`bank` (masks: crafted or loaded) -> :mod:`protector`
(budget, uint8 as saved, transforms) -> :mod:`evaluator` (a target's clean gallery, embeddings) ->
:mod:`protocols` (scores) -> :class:`bench.store.ResultStore` -> :mod:`bench.report`.
"""
