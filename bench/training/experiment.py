"""A training experiment as a small TOML file, run by ``bench train --config FILE``.

insightface arcface_torch's pattern: a base configuration (the profile, :mod:`.config`) plus one small
file per experiment that names only what it changes, so an ablation is a committed file, not a settings
dict inside a script. The keys::

    methods = ["advcloak", "advcloak-center"]   # trained in order (advfaces before any advcloak*)
    source = "dlib-resnet"
    profile = "cpu"        # optional (default cpu)
    steps = 500            # optional (default: the profile's steps for each stage)
    minutes = 30           # optional
    device = "cpu"         # optional (default: cuda if available)

    [options]              # TrainConfig fields, as `--set KEY=VALUE`
    stage2_lr = 2e-5
    stage2_adv_weight = 50

Options given on the command line win over the file's (``--set`` over ``[options]``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import BenchError


@dataclass(frozen=True)
class Experiment:
    methods: tuple[str, ...]
    source: str
    profile: str = "cpu"
    steps: int | None = None
    minutes: float | None = None
    device: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


KEYS = {f.name: f for f in fields(Experiment)}
# what each key must be: (check, description)
KINDS = {
    "methods": (lambda v: isinstance(v, list) and v and all(isinstance(m, str) for m in v), "a non-empty list of method names"),
    "source": (lambda v: isinstance(v, str) and v, "a zoo model name"),
    "profile": (lambda v: isinstance(v, str), "a profile name"),
    "steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "minutes": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
                "a finite number > 0"),
    "device": (lambda v: isinstance(v, str) and v, "a device name (cpu, cuda, cuda:1 ...)"),
    "options": (lambda v: isinstance(v, dict), "a table of training options ([options])"),
}


def load_experiment(path: Path | str) -> Experiment:
    """The experiment of a TOML file, its keys and their types checked (one clear error naming the file)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"training config {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BenchError(f"training config {path} cannot be read as TOML ({exc})") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise BenchError(f"training config {path}: unknown key(s) {', '.join(unknown)}; keys: {', '.join(KEYS)}")
    missing = [k for k in ("methods", "source") if k not in data]
    if missing:
        raise BenchError(f"training config {path} needs {' and '.join(missing)}")
    for key, value in data.items():
        check, wanted = KINDS[key]
        if not check(value):
            raise BenchError(f"training config {path}: {key} must be {wanted}, got {value!r}")
    return Experiment(**{**data, "methods": tuple(data["methods"])})
