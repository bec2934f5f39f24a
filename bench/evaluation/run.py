"""``bench evaluate``: any tool's protected photos, scored exactly like a method's, into the result store.

The steps: match the protected photos to their originals (:mod:`.match`), check each and let the attacker
see it through the shared re-detect stage (:mod:`.photos`), then score the attacker's crops per target with
every protocol against the clean gallery (:mod:`.score`) and store one row per cell in ``--out`` (a
result store: ``bench report`` with ``BENCH_RESULTS`` pointing there puts the tool in the tables), with a
per-photo report ``evaluations/NAME.json`` / ``.md`` beside the rows. No photo is copied anywhere.

With ``split`` the people are a split's (e.g. ``celebrities``, ``commons``): the originals are the split's
own photos (cached geometry, as ``bench run`` uses them), only its test photos are scored, and the rows
carry the split's name when every test photo of every person was scored (else ``NAME-partial``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..budget import DEFAULT_BUDGET
from ..data.splits import Split, load_split
from ..errors import BenchError
from ..features import FaceSource, clean_features, embed_uint8
from ..provenance import provenance
from ..stages.evaluator import split_features
from ..stages.faces import FaceBank
from ..stages.protocols import create_protocol
from ..stages.transforms import parse_chain
from ..store import ResultStore
from ..validate import budget as valid_budget
from ..validate import safe_name
from .match import FolderListing, Pair, SplitListing, match_pairs
from .photos import Evaluated, FolderOriginals, SplitOriginals, evaluate_photo
from .report import write_evaluation_report
from .score import KIND, Scorer, by_person, files_digest, people_hash, quality, target_weights

DEFAULT_PROTOCOLS = ("identification", "gallery-side", "linkability")


def evaluate_folder(protected, *, name: str, originals=None, split: str | None = None, out=None, targets: str = "all",
                    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS, transforms: tuple[str, ...] = ("",),
                    gallery: str = "distractors", allow_resize: bool = False, rescale_to: float | None = None,
                    device: str = "cpu", backend: str = "faiss", batch_size: int = 64,
                    echo: Callable[[str], None] = print, progress: bool = False) -> list[dict]:
    """Score the protected photos in ``protected``; returns the rows (also stored in ``out``)."""
    from ..cloak import resolve_targets
    from ..zoo import create_recognizer

    protected = Path(protected)
    safe_name(name, "--name")
    lines: list[str] = []  # every line about a photo or person, kept for the report too
    say = echo
    echo = _Recorder(lines, say)

    if not protected.is_dir():
        raise BenchError(f"{protected} is not a folder")
    if rescale_to is not None:
        rescale_to = valid_budget(rescale_to, "--rescale-to")
    chains = [parse_chain(t) for t in transforms]
    if any(c.photo is not None for c in chains):
        raise BenchError("--transform realistic makes the protected photos itself; here they are the tool's saved files: "
                         "give crop transforms only (e.g. jpeg:75)")
    scorers = [create_protocol(p) for p in protocols]
    if any(p.learns for p in scorers):
        raise BenchError("adaptive protocols train on people the method protects itself; an external tool's photos "
                         "cannot give them that: use identification, gallery-side, linkability")
    target_names = resolve_targets(targets)
    gallery_split = load_split(gallery)
    people_split = load_split(split) if split else None
    if people_split is not None:
        if originals is not None:
            raise BenchError("--split scores the split's own photos as originals: leave out --originals")
        test_files = people_split.all_files("test")
        prepared = FaceSource(people_split.dataset, test_files, progress=progress).prepared
        listing, source = SplitListing(people_split), SplitOriginals(prepared)
    else:
        if originals is None:
            raise BenchError("give --originals ORIGINALS (the photos before protection), or --split NAME")
        originals = Path(originals)
        if not originals.is_dir():
            raise BenchError(f"--originals {originals} is not a folder")
        if originals.resolve() == protected.resolve():
            raise BenchError("--originals is the protected folder itself")
        listing, source = FolderListing(originals), FolderOriginals(originals)

    pairs = match_pairs(protected, listing, echo)
    if people_split is not None:
        pairs = _test_photos_only(pairs, people_split, echo)
    photos = [e for e in (evaluate_photo(p, source, allow_resize=allow_resize, rescale_to=rescale_to, echo=echo)
                          for p in pairs) if e is not None]
    order = {f: n for n, f in enumerate(people_split.all_files("test"))} if people_split is not None else None
    people = _people_with_two(photos, order, echo)
    if not people:
        raise BenchError("no person has 2 scored photos (each problem is listed above): nothing scored, nothing stored")
    split_label, split_hash = _split_label(people, people_split, echo)
    store = ResultStore(Path(out) if out else None)
    method_config = files_digest([p for p in pairs if any(e.name == p.name for ps in people.values() for e in ps)])
    versions = {"native": (name, DEFAULT_BUDGET, None)}
    if rescale_to is not None:
        versions["rescaled"] = (f"{name}@{rescale_to:g}", rescale_to, rescale_to)
    prov = provenance(device)
    rows = []
    faces = FaceBank([gallery_split], progress=progress)
    for target in target_names:
        start = time.perf_counter()
        model = create_recognizer(target, device=device)
        scorer = Scorer(target, model, gallery_split, split_features(model, faces, gallery_split, batch_size, progress),
                        _clean_people(model, people, people_split, batch_size, progress), backend, batch_size)
        for version, (label, budget, nominal) in versions.items():
            qual = quality(people, version, nominal)
            crops = {i: np.stack([p.versions[version].view.crop for p in ps]) for i, ps in people.items()}
            for chain in chains:
                probes = scorer.embed({i: chain(c) for i, c in crops.items()})
                for protocol in scorers:
                    key = {"split": split_label, "split_hash": split_hash, "gallery_hash": gallery_split.content_hash(),
                           "source": "-", "method": label, "method_config": method_config, "target": target,
                           "weights": target_weights(target), "budget": float(budget), "seed": 0, "n_inference": 0,
                           "transforms": chain.spec, "protocol": protocol.key(gallery_split.name)}
                    row = {**key, **protocol.score(scorer.clean, probes), **qual, "t1": None, "t2": None, "kind": KIND,
                           "method_params": {"tool": name, "version": version, "photos": qual["realistic_photos"]},
                           "budget_matched": nominal is not None, "white_box": False, "backend": backend,
                           "provenance": prov}
                    store.put(key, row)
                    rows.append({**row, "cell": ResultStore.cell_id(key)})
        top1 = [r for r in rows if r["target"] == target and r["protocol"].startswith("ident") and r["transforms"] == ""]
        say(f"{target}: " + ", ".join(f"{r['method']} Top-1 protection {100 * r['top1_protection']:.1f}%" for r in top1)
             + f" ({time.perf_counter() - start:.0f} s)")
    write_evaluation_report(store.root, name, people, rows, split_label, lines)
    say(f"{len(rows)} rows stored in {store.cells}; report: {store.root / 'evaluations' / (name + '.md')}")
    return rows


class _Recorder:
    """An echo that also keeps each line."""

    def __init__(self, lines: list[str], echo: Callable[[str], None]):
        self.lines, self.echo = lines, echo

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.echo(line)


def _test_photos_only(pairs: list[Pair], split: Split, echo) -> list[Pair]:
    test = set(split.all_files("test"))
    kept = []
    for p in pairs:
        if p.original in test:
            kept.append(p)
        else:
            echo(f"{p.name}: not scored, not a test photo of split {split.name!r} (only its test photos are scored)")
    return kept


def _people_with_two(photos: list[Evaluated], order: dict[str, int] | None, echo) -> dict[str, list[Evaluated]]:
    people = by_person(photos)
    if order is not None:  # a split's people in the split's order, as the run embeds them
        people = {i: sorted(ps, key=lambda p: order[p.original]) for i, ps in people.items()}
    for person in [i for i, ps in people.items() if len(ps) < 2]:
        echo(f"{person}: not scored, only {len(people[person])} photo could be scored; a person needs 2 "
             "(one is the probe, another the enrolment photo)")
        del people[person]
    return people


def _split_label(people: dict[str, list[Evaluated]], split: Split | None, echo) -> tuple[str, str]:
    """The rows' split name and hash: the split's own when every test photo of every person was scored."""
    scored = [p for ps in people.values() for p in ps]
    if split is None:
        return "photos", people_hash(scored)
    missing = sorted(set(split.all_files("test")) - {p.original for p in scored})
    if not missing:
        return split.name, split.content_hash()
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    echo(f"{len(missing)} test photo(s) of split {split.name!r} not scored ({shown}): rows stored as split "
         f"{split.name}-partial, outside the split's tables")
    return f"{split.name}-partial", people_hash(scored)


def _clean_people(model, people: dict[str, list[Evaluated]], split: Split | None, batch_size: int,
                  progress: bool) -> dict[str, np.ndarray]:
    """Clean features of the scored photos' originals, by person. A split's come from the run's own cache (the
    split's test photos, embedded as the run's evaluator embeds them), so the clean side is the run's exactly."""
    ids = sorted(people)
    if split is not None:
        flat_files = [f for i in split.identities() for f in split.files(i, "test")]
        feats = clean_features(model, FaceSource(split.dataset, flat_files, progress=progress), flat_files, batch_size, progress)
        row = {f: n for n, f in enumerate(flat_files)}
        return {i: feats[[row[p.original] for p in people[i]]] for i in ids}
    flat = embed_uint8(model, np.stack([p.clean_crop for i in ids for p in people[i]]), batch_size)
    out, offset = {}, 0
    for i in ids:
        out[i] = flat[offset : offset + len(people[i])]
        offset += len(people[i])
    return out
