"""A fault-injection stand-in shared by the resume tests of the serial and the Ray runners (a real store that
is interrupted, not a mock of one)."""

from __future__ import annotations

from bench.store import ResultStore


class InterruptingStore(ResultStore):
    """The real store, killed (KeyboardInterrupt, as Ctrl-C would) when it is asked to write its n-th cell."""

    def __init__(self, root, after: int):
        super().__init__(root)
        self.after, self.written = after, 0

    def put(self, key, row):
        if self.written == self.after:
            raise KeyboardInterrupt
        super().put(key, row)
        self.written += 1
