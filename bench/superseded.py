"""Result cells made with a generator checkpoint that has since been replaced.

A retrained generator has a new sha256, which is part of its method's configuration, so `bench run`
crafts and measures it afresh while the old cells stay in the store (nothing is lost). A report, though,
describes the checkpoints a user would run today: without this, a store holding both would show one
method twice ("advcloak" and "advcloak [checkpoint_sha256=...]"). Cells whose checkpoint card now names
another sha256 are left out of the report, and the report says which and how many.
"""

from __future__ import annotations

from collections import Counter

from methods.checkpoints import Checkpoint
from .errors import WeightFileError


def current_sha256(checkpoint: str) -> str | None:
    """The sha256 on the card of ``checkpoint`` ('<source>/<name>', as a generator method's configuration
    names it) where generators are looked up now; None when there is no readable card (then nothing can
    be judged stale). The card's value, not a fresh hash: a report should not re-hash every checkpoint."""
    source, _, name = checkpoint.partition("/")
    ckpt = Checkpoint(source, name, trains_with=name)
    if not ckpt.card_path.is_file():
        return None
    try:
        return ckpt.card().get("sha256") or None
    except WeightFileError:
        return None


def split_superseded(rows: list[dict]) -> tuple[list[dict], Counter]:
    """(the rows made with the current checkpoints or with none, a count of the others per
    (checkpoint, their sha256, the current sha256))."""
    current: dict[str, str | None] = {}
    kept, stale = [], Counter()
    for row in rows:
        params = row.get("method_params")
        checkpoint = params.get("checkpoint") if isinstance(params, dict) else None
        made_with = params.get("checkpoint_sha256") if checkpoint else None
        if checkpoint and made_with:
            if checkpoint not in current:
                current[checkpoint] = current_sha256(checkpoint)
            now = current[checkpoint]
            if now is not None and now != made_with:
                stale[(checkpoint, made_with, now)] += 1
                continue
        kept.append(row)
    return kept, stale


def describe(stale: Counter) -> list[str]:
    return [f"left out {n} cell(s) of {checkpoint} made with another checkpoint (sha256 {old[:12]}; the current "
            f"card's is {new[:12]}); they stay in the result store" for (checkpoint, old, new), n in sorted(stale.items())]
