"""cloakbench: a benchmark of person-specific face-privacy masks.

The harness lives in this package (CLI, registries, recognizer zoo, data pipeline, protocol, search,
metrics, result store, reports); mask-crafting methods live in the sibling package ``methods``.
"""

__version__ = "0.1.0"
