"""The output-folder policy of commands that write a folder of files for a user (``bench cloak``,
``bench verify-cloak``): never replace a file we did not write, never leave a file we wrote that no
longer belongs, and say so when a run did not finish.

A manifest (``MANIFEST``) in the folder lists every file the command wrote with its sha256, and is
rewritten after each file, with ``state: incomplete`` until the run ends (then ``complete``). So:

- a file of the folder is *ours* only when the manifest lists it and its bytes still have the listed
  sha256; any other file is *foreign* (the user's own, or ours edited since) and is replaced only with
  ``overwrite=True`` (``--overwrite``): otherwise the run stops before any work, naming the files;
- a file of ours that the new run does not write again (its photo was removed from the input, or no
  longer has a face) is *stale*: it is removed when the run finishes, with a line saying so;
- a run killed half-way leaves ``state: incomplete`` and a placeholder ``report.md`` saying so, and
  readers (``verify-cloak``) refuse the folder until it is run again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from .atomic import atomic_write
from .errors import BenchError
from .validate import plain_name

MANIFEST = "cloak-manifest.json"
MANIFEST_VERSION = 1


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None when there is none or it is not one (then every file is foreign)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("files"), dict) and data.get("state") in ("incomplete", "complete")
            and all(isinstance(k, str) and isinstance(v, str) for k, v in data["files"].items())):
        return None
    return data


def _cannot_write(folder: Path, exc: OSError) -> BenchError:
    return BenchError(f"cannot write to {folder} ({type(exc).__name__}: {exc.strerror or exc}); "
                      "choose a folder you can write to with --out")


class OutputFolder:
    """One run's writes into ``folder``. ``planned``: every name the run may write (checked up front)."""

    def __init__(self, folder: Path, tool: str, echo: Callable[[str], None] = print):
        self.folder, self.tool, self.echo = Path(folder), tool, echo
        self.written: dict[str, str] = {}
        self.previous = read_manifest(self.folder) if self.folder.is_dir() else None
        self.own: dict[str, str] = {}  # name -> sha256, files of an earlier run still as it wrote them
        for name, sha in (self.previous or {}).get("files", {}).items():
            path = self.folder / name
            if plain_name(name) and name != MANIFEST and path.is_file() and sha256_file(path) == sha:
                self.own[name] = sha

    def foreign(self, names) -> list[str]:
        """Those of ``names`` that exist in the folder and were not written (as they are) by us."""
        mine = set(self.own) | ({MANIFEST} if self.previous is not None else set())
        return sorted(n for n in names if (self.folder / n).exists() and n not in mine)

    def check(self, planned, overwrite: bool) -> None:
        """Refuse, before any work, to replace foreign files (unless ``overwrite``)."""
        clash = self.foreign(set(planned) | {MANIFEST})
        if clash and not overwrite:
            shown = ", ".join(clash[:5]) + (f" and {len(clash) - 5} more" if len(clash) > 5 else "")
            why = (f" (its {MANIFEST} is unreadable, so none of its files counts as written by `{self.tool}`)"
                   if MANIFEST in clash else "")
            raise BenchError(f"{self.folder} already holds {len(clash)} file(s) this command would replace and that it did "
                             f"not write: {shown}{why}; choose an empty --out folder, or pass --overwrite to replace them")

    def start(self, note: str) -> None:
        """Check the folder is writable and mark it incomplete (manifest + ``note`` as a placeholder
        report.md) before the first output is written."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._save("incomplete")
        except OSError as exc:
            raise _cannot_write(self.folder, exc) from None
        self.write_text("report.md", note)

    def write_bytes(self, name: str, data: bytes) -> Path:
        return self._write(name, lambda tmp: tmp.write_bytes(data))

    def write_text(self, name: str, text: str) -> Path:
        return self._write(name, lambda tmp: tmp.write_text(text))

    def write_with(self, name: str, write: Callable[[Path], object]) -> Path:
        return self._write(name, write)

    def _write(self, name: str, write: Callable[[Path], object]) -> Path:
        path = self.folder / name
        try:
            atomic_write(path, write)
            self.written[name] = sha256_file(path)
            self._save("incomplete")
        except OSError as exc:
            raise _cannot_write(self.folder, exc) from None
        return path

    def finish(self) -> list[str]:
        """Remove our stale files of an earlier run, then mark the folder complete. Returns the removed names."""
        removed = []
        for name, sha in sorted(self.own.items()):
            path = self.folder / name
            if name not in self.written and path.is_file() and sha256_file(path) == sha:
                try:
                    path.unlink()
                except OSError as exc:
                    raise _cannot_write(self.folder, exc) from None
                removed.append(name)
                self.echo(f"{name}: removed (written by an earlier `{self.tool}` run, no longer produced: stale)")
        try:
            self._save("complete")
        except OSError as exc:
            raise _cannot_write(self.folder, exc) from None
        return removed

    def _save(self, state: str) -> None:
        # files of an earlier run not yet replaced or removed stay listed, so an interrupted run still knows them
        files = {**{n: s for n, s in self.own.items() if state == "incomplete"}, **self.written}
        body = {"version": MANIFEST_VERSION, "tool": self.tool, "state": state, "files": dict(sorted(files.items()))}
        atomic_write(self.folder / MANIFEST, lambda tmp: tmp.write_text(json.dumps(body, indent=1) + "\n"))


def add_to_manifest(folder: Path, name: str, write: Callable[[Path], object]) -> Path:
    """Write one more file into a complete folder (verify-cloak's verify.json) and list it in the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise BenchError(f"{folder} has no readable {MANIFEST}: it was not written by `bench cloak` (or by an older version)")
    path = folder / name
    try:
        atomic_write(path, write)
        manifest["files"][name] = sha256_file(path)
        atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1) + "\n"))
    except OSError as exc:
        raise _cannot_write(folder, exc) from None
    return path
