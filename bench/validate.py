"""One check for every number and name a command takes from a user: budgets, minutes, rates, tolerances,
and names that become file names.

Why one module: range checks written per command each missed a case. click's ``FloatRange`` tests
``value < min``, which is False for NaN, so ``bench train --minutes nan`` started; ``budget > 0`` holds
for infinity and 1e9, so ``bench cloak --budget inf`` ran and wrote invalid JSON. Every check here is
"finite, then in range", and a name is accepted only in a shape that cannot leave the folder it is
joined to.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath

import click

from .errors import BenchError

# The largest L2 a mask can have on the 112 x 112 x 3 face crop in 0-255 units (every value moved by
# 255): a larger budget only saturates, so it is a typo (1e9) rather than a setting.
MAX_BUDGET = 255.0 * math.sqrt(3 * 112 * 112)


def finite(value, what: str, low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> float:
    """``value`` as a float that is finite and within [low, high] (open ends where asked), else a BenchError
    naming ``what`` and the valid range."""
    lo = "" if low is None else (f"> {low:g}" if low_open else f">= {low:g}")
    hi = "" if high is None else (f"< {high:g}" if high_open else f"<= {high:g}")
    valid = " ".join(w for w in ["a finite number", lo, "and" if lo and hi else "", hi] if w)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BenchError(f"{what} must be {valid}, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise BenchError(f"{what} must be {valid}, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise BenchError(f"{what} must be {valid}, got {value!r}")
    if high is not None and (number >= high if high_open else number > high):
        raise BenchError(f"{what} must be {valid}, got {value!r}")
    return number


def budget(value, what: str = "--budget") -> float:
    """An L2 budget on 0-255 pixels of the 112x112 crop: finite, > 0, at most ``MAX_BUDGET``."""
    return finite(value, what, 0.0, round(MAX_BUDGET, 1), low_open=True)


def minutes(value, what: str = "--minutes") -> float:
    """A time limit in minutes: finite and > 0."""
    return finite(value, what, 0.0, low_open=True)


def rate_percent(value, what: str) -> float:
    """A rate in percent (0-100), finite."""
    return finite(value, what, 0.0, 100.0)


class Finite(click.ParamType):
    """A click option type running :func:`finite` (click's FloatRange accepts nan and, open-ended, inf)."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False, check=None):
        self.low, self.high, self.low_open, self.check = low, high, low_open, check

    def convert(self, value, param, ctx):
        what = f"--{param.name.replace('_', '-')}" if param is not None and param.name else "value"
        try:
            if self.check is not None:
                return self.check(value, what)
            return finite(value, what, self.low, self.high, low_open=self.low_open)
        except BenchError as exc:
            self.fail(str(exc), param, ctx)


# A name that becomes a file name (split names, output names): letters, digits, '.', '_', '-', '+', not
# starting with '.' (no hidden files, no '..'), at most 100 characters. '/' and '\\' are refused, so the
# name can only ever mean a file directly inside the folder it is joined to.
SAFE_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,99}")


def safe_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name (see ``SAFE_NAME``), else a BenchError saying what is allowed."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise BenchError(f"{what} {name!r} cannot be used as a file name: use letters, digits, '_', '-', '+' and '.' "
                         "(not first), at most 100 characters, no '/' or '..'")
    return name


def plain_name(name) -> bool:
    """Whether ``name`` (any text, e.g. a photo's printable file name) can only mean a file directly inside the
    folder it is joined to: no separator, not '.', '..' or empty, no NUL. Looser than ``safe_name`` (spaces and
    accents are fine), for names a user chose; used on names read back from reports and manifests."""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def relative_path(relpath: str, what: str) -> str:
    """``relpath`` if it is a relative POSIX path that stays inside whatever folder it is joined to (no
    absolute path, no drive, no '..' part, no backslash), else a BenchError naming ``what``."""
    text = str(relpath)
    pure = PurePosixPath(text)
    if (not text or "\\" in text or "\0" in text or pure.is_absolute() or ".." in pure.parts
            or ":" in (pure.parts[0] if pure.parts else "")):
        raise BenchError(f"{what} {text!r} is not a relative path inside its dataset (no leading '/', no '..')")
    return text
