"""Results of record: the committed, reviewable form of a result store's cells and run profiles.

``results/records/<split>/<source>/<method>[-<config>].json`` holds every cell of one (split, source,
method configuration): all targets, budgets, numbers of inference photos, transforms, protocols and seeds,
with their rates, per-identity hit counts (the intervals' inputs), quality, timing and provenance.
``results/records/profiles/`` holds the runs' stage profiles and the unit costs their floors use, so
``reports/profile.csv`` is rebuilt without measuring anything. ``bench records export`` writes them from a
store (only cells made at a clean commit, unless ``--allow-dirty`` marks the records as an experiment);
:class:`RecordStore` reads them back as exactly the rows :meth:`bench.store.ResultStore.rows` gave.

The format keeps a diff reviewable: one field a line, cells in a stable order (target, budget, inference
photos, transform, protocol, seed), what every cell of a record shares written once (``common``), and the
per-identity counts as one list per k in the order of the record's ``people``. ``fields`` keeps the
cells' own field order, so the frames (and the CSVs written from them) come back column for column.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_write
from .errors import BenchError
from .paths import work_dir

FORMAT = "cloakbench-record/1"
PROFILES = "profiles"
UNIT_COSTS = "unit-costs.json"  # beside the profiles; not run-*.json, so no profile glob takes it
GROUP_FIELDS = ("split", "source", "method", "method_config")
CLEAN_COMMIT = re.compile(r"[0-9a-f]{40}")
# the packed per-identity counts (names no stored cell uses)
HITS, PAIRS, ORDER = "per_identity_hits@people", "per_identity_pairs@people", "@fields"


def records_dir() -> Path:
    """The committed records: BENCH_RECORDS, else ``results/records`` in the working directory (not under
    BENCH_RESULTS: a hand run's store elsewhere must not hide the records of the checkout)."""
    import os

    env = os.environ.get("BENCH_RECORDS")
    return Path(env) if env else work_dir() / "results" / "records"


def is_clean(commit) -> bool:
    """A commit hash without ``-dirty``: 'unknown', 'installed:...' and dirty checkouts are not."""
    return isinstance(commit, str) and CLEAN_COMMIT.fullmatch(commit) is not None


def commit_of(item: dict) -> str:
    prov = item.get("provenance")
    return str(prov.get("commit", "unknown")) if isinstance(prov, dict) else "unknown"


# one record: pack and unpack ------------------------------------------------------------------------

def _slug(text: str) -> str:
    return "no-source" if text in ("-", "") else re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text))


def _sort_key(row: dict) -> tuple:
    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("inf")
    return (str(row.get("target")), num(row.get("budget")), num(row.get("n_inference")), str(row.get("transforms")),
            str(row.get("protocol")), num(row.get("seed")), str(row.get("cell")))


def _packable(row: dict, people: list[str], ks: list[str]) -> bool:
    hits, pairs = row.get("per_identity_hits"), row.get("per_identity_pairs")
    return (isinstance(hits, dict) and isinstance(pairs, dict) and list(hits) == people and list(pairs) == people
            and all(isinstance(h, dict) and list(h) == ks for h in hits.values()))


def pack(rows: list[dict], clean: bool) -> dict:
    """One record (a JSON-able dict) from the cells of one group."""
    rows = sorted(rows, key=_sort_key)
    first = rows[0]
    hits0 = first.get("per_identity_hits")
    people = list(hits0) if isinstance(hits0, dict) and hits0 else []
    ks = list(next(iter(hits0.values()))) if people and isinstance(next(iter(hits0.values())), dict) else []
    fields: list[str] = []
    for row in sorted(rows, key=lambda r: str(r.get("cell"))):  # the store's order: the first cell's fields lead
        fields += [k for k in row if k not in fields]
    packed = []
    for row in rows:
        if any(k in row for k in (HITS, PAIRS, ORDER)):
            raise BenchError(f"cell {row.get('cell')} has a field named like the record format's own ({HITS}, {PAIRS}, {ORDER})")
        out = dict(row)
        if people and _packable(row, people, ks):
            hits, pairs = out.pop("per_identity_hits"), out.pop("per_identity_pairs")
            out[HITS] = {k: [hits[p][k] for p in people] for k in ks}
            out[PAIRS] = [pairs[p] for p in people]
        if list(row) != [k for k in fields if k in row]:
            out[ORDER] = list(row)
        packed.append(out)
    common = {k: v for k, v in packed[0].items()
              if k not in ("cell", ORDER) and all(k in r and r[k] == v for r in packed[1:])}
    cells = [{k: v for k, v in r.items() if k not in common} for r in packed]
    commits = sorted({commit_of(r) for r in rows})
    return {"format": FORMAT, **{k: first.get(k) for k in GROUP_FIELDS}, "cells": len(rows), "clean": clean,
            "commits": commits, "people": people, "fields": fields, "common": common, "rows": cells}


def unpack(record: dict, where: str = "record") -> list[dict]:
    """The cells of one record, each as the store wrote it (same fields, same order)."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BenchError(f"{where} is not a result record ({FORMAT})")
    people, fields, common = record["people"], record["fields"], record["common"]
    out = []
    for cell in record["rows"]:
        row = {**common, **cell}
        if HITS in row:
            hits, pairs = row.pop(HITS), row.pop(PAIRS)
            row["per_identity_hits"] = {p: {k: hits[k][i] for k in hits} for i, p in enumerate(people)}
            row["per_identity_pairs"] = {p: pairs[i] for i, p in enumerate(people)}
        order = row.pop(ORDER, None) or [k for k in fields if k in row]
        out.append({k: row[k] for k in order + [k for k in row if k not in order]})
    return out


def _value(v) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def _object(d: dict, indent: str) -> list[str]:
    items = list(d.items())
    return [f'{indent}{_value(k)}: {_value(v)}{"," if i < len(items) - 1 else ""}' for i, (k, v) in enumerate(items)]


def dumps(record: dict) -> str:
    """A record as text: header fields one a line, then ``common`` and every cell one field a line."""
    lines = ["{"]
    head = [k for k in record if k not in ("common", "rows")]
    lines += [f' {_value(k)}: {_value(record[k])},' for k in head]
    lines += [' "common": {'] + _object(record["common"], "  ") + [" },", ' "rows": [']
    for i, cell in enumerate(record["rows"]):
        lines += ["  {"] + _object(cell, "   ") + ["  }" + ("," if i < len(record["rows"]) - 1 else "")]
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


# the folder -----------------------------------------------------------------------------------------

class RecordStore:
    """The records in a folder, read as a result store's rows and profiles."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else records_dir()

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.glob("*/*/*.json") if p.parent.parent.name != PROFILES)

    def records(self) -> list[tuple[Path, dict]]:
        out = []
        for path in self.files():
            try:
                out.append((path, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as err:
                raise BenchError(f"{path}: not a readable result record ({err})") from None
        return out

    def rows(self) -> list[dict]:
        """Every cell, in the store's order (by cell id): the rows ResultStore.rows() gave at export."""
        rows = [r for path, record in self.records() for r in unpack(record, str(path))]
        ids = [r.get("cell") for r in rows]
        if len(set(ids)) != len(ids):
            twice = next(c for c in ids if ids.count(c) > 1)
            raise BenchError(f"cell {twice} is in more than one record under {self.root}")
        return sorted(rows, key=lambda r: str(r.get("cell")))

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    def profiles(self) -> list[dict]:
        """The run profiles, oldest first, as ResultStore.profiles() gives them."""
        return [{"file": p.name, **json.loads(p.read_text())} for p in sorted((self.root / PROFILES).glob("run-*.json"))]

    def unit_costs(self) -> dict | None:
        path = self.root / PROFILES / UNIT_COSTS
        return json.loads(path.read_text()) if path.exists() else None

    def __bool__(self) -> bool:
        return bool(self.files())


# export ---------------------------------------------------------------------------------------------

@dataclass
class Exported:
    records: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    cells: int = 0
    new_cells: int = 0
    profiles: int = 0
    dirty: int = 0


def _refuse_dirty(items: list[dict], name) -> tuple[int, str]:
    """How many of ``items`` come from no clean commit, and the first one's name."""
    bad = [i for i in items if not is_clean(commit_of(i))]
    return len(bad), (name(bad[0]) if bad else "")


def _cell_name(row: dict) -> str:
    return (f"cell {row.get('cell')} ({row.get('split')}, {row.get('source')}, {row.get('method')} on {row.get('target')}, "
            f"commit {commit_of(row)!r})")


def check_clean(rows: list[dict], profiles: list[dict]) -> None:
    """One error line naming the first cell (or profile) from a -dirty or unknown commit, and how many."""
    for items, what, name in ((rows, "cells", _cell_name),
                              (profiles, "run profiles", lambda p: f"run profile {p.get('file')} (commit {commit_of(p)!r})")):
        n, first = _refuse_dirty(items, name)
        if n:
            raise BenchError(f"{first} was not made at a clean commit; {n} of {len(items)} {what} are from a -dirty or "
                             "unknown commit. Records must come from a clean commit: re-run them there, or pass "
                             "--allow-dirty for an experiment (its records are then marked \"clean\": false)")


def group_of(row: dict) -> tuple:
    return tuple(str(row.get(k, "")) for k in GROUP_FIELDS)


def record_paths(groups: list[tuple]) -> dict[tuple, Path]:
    """Relative path per group: ``<split>/<source>/<method>.json``, with ``-<config>`` when the split and source
    hold more than one configuration of the method."""
    count: dict[tuple, int] = {}
    for g in groups:
        count[g[:3]] = count.get(g[:3], 0) + 1
    return {g: Path(_slug(g[0])) / _slug(g[1]) / (f"{_slug(g[2])}.json" if count[g[:3]] == 1 else
                                                  f"{_slug(g[2])}-{_slug(g[3])[:12]}.json") for g in groups}


def export(store, out: Path | None = None, allow_dirty: bool = False, replace: bool = False) -> Exported:
    """Write ``store``'s cells and profiles into the records folder ``out``. A cell already recorded (same cell
    id) is replaced by the store's, other recorded cells are kept (``replace``: the folder is emptied first).
    Nothing is written when a cell or profile is from a -dirty or unknown commit (unless ``allow_dirty``)."""
    from .run_profile import profile_costs

    out = Path(out) if out else records_dir()
    rows, profiles = store.rows(), store.profiles()
    if not rows:
        raise BenchError(f"the result store {store.root} has no cells to export")
    if not allow_dirty:
        check_clean(rows, profiles)
    kept = RecordStore(out)
    old_rows = [] if replace else kept.rows()
    old_profiles = [] if replace else kept.profiles()
    new_ids = {r["cell"] for r in rows}
    merged = sorted([r for r in old_rows if r.get("cell") not in new_ids] + rows, key=lambda r: str(r.get("cell")))
    groups: dict[tuple, list[dict]] = {}
    for row in merged:
        groups.setdefault(group_of(row), []).append(row)
    paths = record_paths(list(groups))
    texts = {out / paths[g]: dumps(pack(cells, all(is_clean(commit_of(c)) for c in cells))) for g, cells in groups.items()}
    names = {p["file"] for p in profiles}
    all_profiles = [p for p in old_profiles if p["file"] not in names] + profiles
    costs = profile_costs(all_profiles) if all_profiles else None  # measured now where no run recorded them
    # everything is built; now write
    stale = [p for p in kept.files() if p not in texts] if out.exists() else []
    if replace and (out / PROFILES).exists():
        shutil.rmtree(out / PROFILES)
    for path in stale:
        path.unlink()
    for path, text in texts.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write(path, lambda p, t=text: p.write_text(t, encoding="utf-8"))
    for prof in all_profiles:
        body = {k: v for k, v in prof.items() if k != "file"}
        atomic_write(out / PROFILES / prof["file"], lambda p, b=body: p.write_text(json.dumps(b, indent=1, default=str)))
    if costs is not None:
        atomic_write(out / PROFILES / UNIT_COSTS, lambda p: p.write_text(json.dumps(costs, indent=1)))
    for folder in sorted({p.parent for p in stale}, key=lambda p: -len(p.parts)):
        for f in (folder, folder.parent):
            if f.exists() and f != out and not any(f.iterdir()):
                f.rmdir()
    dirty = sum(1 for r in merged if not is_clean(commit_of(r)))
    return Exported(sorted(texts), stale, len(merged), len(rows), len(all_profiles), dirty)
