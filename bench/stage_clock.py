"""Wall time per stage of a run: where a ``bench run`` spends its time (issue: a profile with a floor).

A stage is a name such as ``align``, ``embed:hse-faceres`` or ``craft:opom-convex@mobileface``.
Times are *exclusive*: while a nested stage runs (alignment triggered inside an embedding, say) the
outer stage's clock is paused, so the stages of a run add up to its wall time with nothing counted
twice. Code deep in the pipeline marks its stage with :func:`stage` and needs no clock passed down:
the run's :class:`StageClock` is the active one (a context variable), and without one ``stage`` does
nothing. Each stage also counts the items it processed (images, image-steps, cells), which the
profile divides by to give a per-item cost.

On CUDA, kernels run asynchronously: a stage that queued work would hand its time to the next one.
``StageClock(sync=...)`` synchronises the device at every stage boundary (``bench run`` does so on
CUDA), which costs a few microseconds a boundary and makes the split honest.
"""

from __future__ import annotations

import contextvars
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

_ACTIVE: contextvars.ContextVar["StageClock | None"] = contextvars.ContextVar("bench_stage_clock", default=None)


class StageClock:
    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []  # [name, started_at] of the open stages, innermost last
        self._sync = sync or (lambda: None)
        self._started = time.perf_counter()
        self._wall: float | None = None
        self._token = None

    # activation --------------------------------------------------------------------------------
    def __enter__(self) -> "StageClock":
        self._started, self._wall = time.perf_counter(), None
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.reset(self._token)
        self._wall = time.perf_counter() - self._started

    @property
    def wall(self) -> float:
        """Seconds from entering the clock to leaving it (or to now, while it runs)."""
        return self._wall if self._wall is not None else time.perf_counter() - self._started

    # stages -----------------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str, items: int = 0) -> Iterator[None]:
        self._sync()
        now = time.perf_counter()
        if self._stack:  # pause the enclosing stage
            outer = self._stack[-1]
            self.seconds[outer[0]] += now - outer[1]
        entry = [name, now]
        self._stack.append(entry)
        try:
            yield
        finally:
            self._sync()
            end = time.perf_counter()
            self._stack.pop()
            self.seconds[name] += end - entry[1]  # since it started, or since its last nested stage ended
            self.items[name] += int(items)
            self.calls[name] += 1
            if self._stack:  # resume the enclosing stage
                self._stack[-1][1] = end

    def add_items(self, name: str, items: int) -> None:
        self.items[name] += int(items)

    def totals(self) -> dict:
        """Seconds, items and calls per stage, plain dicts (what a remote worker sends back to be merged)."""
        return {"seconds": dict(self.seconds), "items": dict(self.items), "calls": dict(self.calls)}

    def merge(self, totals: dict) -> None:
        """Add another clock's :meth:`totals` (a worker's stages) to this one's."""
        for part in ("seconds", "items", "calls"):
            mine = getattr(self, part)
            for name, value in totals[part].items():
                mine[name] += value

    def rows(self) -> list[dict]:
        """One row per stage, slowest first: seconds, calls, items and seconds per item."""
        out = []
        for name, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            items = self.items.get(name, 0)
            out.append({"stage": name, "kind": name.split(":")[0], "seconds": round(seconds, 4),
                        "calls": self.calls.get(name, 0), "items": items,
                        "seconds_per_item": round(seconds / items, 6) if items else None})
        return out


@contextmanager
def stage(name: str, items: int = 0) -> Iterator[None]:
    """Time the enclosed block as stage ``name`` on the active clock (a no-op when none is active)."""
    clock = _ACTIVE.get()
    if clock is None:
        yield
        return
    with clock.stage(name, items):
        yield


def record_items(name: str, items: int) -> None:
    """Add ``items`` to stage ``name`` of the active clock (for counts known only after the stage ran)."""
    clock = _ACTIVE.get()
    if clock is not None:
        clock.add_items(name, items)


class SurrogatePasses:
    """Counts the images that go through ``models`` with autograd on (forward+backward passes, crafting's
    work unit), with a forward hook per model, removed on exit."""

    def __init__(self, models):
        self.models, self.with_grad, self.without_grad, self._handles = list(models), 0, 0, []

    def _hook(self, module, inputs, output) -> None:
        n = int(inputs[0].shape[0]) if inputs and hasattr(inputs[0], "shape") and inputs[0].dim() > 0 else 0
        if torch_grad_enabled() and getattr(inputs[0], "requires_grad", False):
            self.with_grad += n
        else:
            self.without_grad += n

    def __enter__(self) -> "SurrogatePasses":
        self._handles = [m.register_forward_hook(self._hook) for m in self.models]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()


def torch_grad_enabled() -> bool:
    import torch

    return torch.is_grad_enabled()


def cuda_sync(device: str) -> Callable[[], None] | None:
    """The synchronisation a clock needs on ``device`` (None on the CPU, where nothing is queued)."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    return lambda: torch.cuda.synchronize(torch.device(device))
