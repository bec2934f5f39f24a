"""Weight files with recorded checksums: a missing or altered file is an error naming it and its origin."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..errors import WeightFileError


@lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    # keyed by (size, mtime) so a file is hashed once per process, and again if it changes
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    st = Path(path).stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class WeightFile:
    """One file a pretrained model needs.

    ``locate`` is called lazily (the shared folder or an installed package may be absent until use);
    ``source`` tells a user where the file comes from when it is missing or corrupt.
    """

    name: str
    locate: Callable[[], Path]
    sha256: str
    source: str

    def path(self) -> Path:
        try:
            path = Path(self.locate())
        except Exception as exc:  # e.g. the providing package is not installed
            raise WeightFileError(f"cannot locate weight file {self.name}: {exc}. It comes from: {self.source}") from exc
        if not path.is_file():
            raise WeightFileError(f"weight file {self.name} is missing at {path}. It comes from: {self.source}")
        return path

    def verified_path(self) -> Path:
        path = self.path()
        digest = sha256_of(path)
        if digest != self.sha256:
            raise WeightFileError(
                f"weight file {path} is corrupt or a different version: sha256 {digest}, expected {self.sha256}. "
                f"Get it again from: {self.source}"
            )
        return path
