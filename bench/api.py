"""The Python entry point for notebooks: run a benchmark slice, or load results, as a pandas DataFrame.

>>> from bench import api
>>> rows = api.run(methods=["none", "opom-convex"], sources=["mobileface"], targets=["mobileface", "dlib-resnet"],
...                split="commons", results="/tmp/my-results")            # doctest: +SKIP
>>> rows.groupby(["method", "target"])["top1_protection"].mean()       # doctest: +SKIP
>>> committed = api.load("results/records")                             # doctest: +SKIP

:func:`run` is ``bench run`` without the command line: the same :class:`bench.runner.Runner`, the same result
store (cells already stored are read back, not recomputed), one row per cell. :func:`load` reads a result
store (a folder with ``cells/``) or a records folder (``results/records``, :mod:`bench.records`). The
rows' columns are documented in docs/running.md (results).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from .errors import BenchError

# RunConfig fields that take a list; a single value is accepted for each
LIST_OPTIONS = ("budgets", "seeds", "n_inference", "transforms", "protocols")


def _names(value, parse, option: str) -> list[str]:
    if isinstance(value, str):
        return parse(value)
    if not value:
        raise BenchError(f"{option} needs at least one name")
    return parse(",".join(value))


def run(methods, sources=None, targets="all", split: str = "celebrities", *, results=None, progress: bool = False,
        **options) -> pd.DataFrame:
    """Craft masks, protect the test photos and measure 1:N identification, as ``bench run`` does; the rows
    of every planned cell as a DataFrame (one row per split, source, method configuration, target, budget,
    seed, inference photos, transform and protocol).

    - ``methods``: names (a list, or comma-separated text; see ``bench methods``);
    - ``sources``: surrogate recognizers ('a+b': an ensemble); default: every differentiable zoo model;
    - ``targets``: recognizers, or 'all';
    - ``split``: celebrities, commons, or a split of your own (``split_folder=`` names its folder);
    - ``results``: the result store folder (default: results/ or BENCH_RESULTS);
    - ``options``: any other field of :class:`bench.runner.RunConfig`: ``budgets``, ``seeds``,
      ``n_inference``, ``transforms``, ``protocols`` (each a value or a list), ``params``
      ({method: {key: value}}), ``device`` (default: cuda where available, else cpu), ``gallery_split``, ``split_folder``, ``backend``, ``index``,
      ``craft_batch``.
    """
    import methods as method_pkg

    from .runner import RunConfig, Runner, default_sources
    from .store import ResultStore
    from .zoo import RECOGNIZERS

    known = {f.name for f in fields(RunConfig)} - {"methods", "sources", "targets", "split"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BenchError(f"bench.api.run: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in LIST_OPTIONS:
        if name in options and (isinstance(options[name], (str, int, float))):
            options[name] = [options[name]]
    if "device" not in options:  # as `bench run`: the GPU where there is one
        import torch

        options["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    if "budgets" in options:
        options["budgets"] = [float(b) for b in options["budgets"]]
    source_list = default_sources() if sources is None else (
        [s.strip() for s in sources.split(",") if s.strip()] if isinstance(sources, str) else list(sources))
    for source in source_list:
        for name in source.split("+"):
            RECOGNIZERS.entry(name)
    cfg = RunConfig(methods=_names(methods, method_pkg.METHODS.parse_list, "methods"), sources=source_list,
                    targets=_names(targets, RECOGNIZERS.parse_list, "targets"), split=split, **options)
    store = ResultStore(results) if results else ResultStore()
    return pd.DataFrame(Runner(cfg, store, progress=progress).run())


def load(path=None) -> pd.DataFrame:
    """The rows of a result store (a folder holding ``cells/``) or of a records folder (``results/records``;
    a results folder without cells but with ``records/`` reads those), as a DataFrame; default: results/."""
    from .paths import results_dir
    from .records import RecordStore
    from .store import ResultStore

    path = Path(path) if path else results_dir()
    if not path.is_dir():
        raise BenchError(f"{path} is not a folder: give a result store (with cells/) or a records folder")
    if (path / "cells").is_dir():
        return ResultStore(path).frame()
    for folder in (path, path / "records"):
        if RecordStore(folder):
            return RecordStore(folder).frame()
    raise BenchError(f"{path} holds neither result cells (cells/*.json) nor records (<split>/<source>/<method>.json)")
