"""``bench train select``: score candidate generator checkpoints on every photo of the identities training
held back, and name the best.

The trainer's own validation (:mod:`.validate`) uses 10 inference + 10 test photos of 4 held-back
identities: enough to follow a run, too noisy to choose between two checkpoints (its cosine moves by
~0.003 between neighbouring evaluations of the same run). This uses *all* ~150 photos of the same 4
identities, which no training run ever sees, and several random draws of the 10 inference photos, so
checkpoints can be compared (paired, same draws) without touching the test splits:

* each draw: the method's mask from 10 inference photos (the real method code path, ``craft_mask``),
  rescaled to L2 1,200 and added to every other photo of that person, saved as uint8;
* ``cos``: mean cosine(protected, clean) on the surrogate (lower = stronger);
* ``top1``: Top-1 protection as the benchmark's 1:N protocol counts it (:mod:`bench.protocol`): each
  other clean photo of the person in turn is their only gallery photo, among distractors = every photo
  of the other held-back people and ``distractors`` clean photos of each training identity; ties go
  to the true match.

Each candidate root is a ``BENCH_GENERATORS`` folder (``<root>/<source>/<checkpoint>.*``), e.g. a run's
``snapshots/step-NNNNNN``. The best is the highest held-out Top-1 protection (then the lower cosine).
It is a selection signal on 4 people, not a result: the benchmark's numbers come from the test splits.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from methods import create_method

from ..budget import DEFAULT_BUDGET, protect, scale_to_budget
from ..data.splits import load_split
from ..errors import BenchError
from ..features import FaceSource, embed_uint8
from ..protocol import identification
from ..search import make_index
from ..zoo import create_recognizer
from ..zoo.base import Recognizer, to_canonical
from .data import held_back_identities

INFERENCE_PHOTOS = 10


def load_faces(split: str, identities: list[str], per_identity: int | None) -> dict[str, np.ndarray]:
    """Aligned uint8 crops of the first ``per_identity`` training photos (all with None) of each identity."""
    sp = load_split(split)
    files = {i: sp.files(i, "train")[:per_identity] for i in identities}
    source = FaceSource(sp.dataset, [f for fs in files.values() for f in fs], progress=False)
    return {i: source.faces(fs) for i, fs in files.items()}


@contextlib.contextmanager
def generators_root(root: Path):
    """Methods read their checkpoints from ``$BENCH_GENERATORS``: point it at ``root`` for a while."""
    before = os.environ.get("BENCH_GENERATORS")
    os.environ["BENCH_GENERATORS"] = str(root)
    try:
        yield
    finally:
        if before is None:
            del os.environ["BENCH_GENERATORS"]
        else:
            os.environ["BENCH_GENERATORS"] = before


def score(method_name: str, root: Path, surrogate: Recognizer, held: dict[str, np.ndarray], distractor_f: np.ndarray,
          draws: int, seed: int) -> dict[str, float]:
    """Held-out ``cos``, ``top1`` and the number of probe pairs of ``method_name`` with the checkpoints of ``root``."""
    method = create_method(method_name)
    clean_f = {i: embed_uint8(surrogate, f) for i, f in held.items()}
    # each person's distractors: every photo of the other held-back people, then the training identities'
    others = {i: make_index("torch", np.concatenate([clean_f[j] for j in held if j != i] + [distractor_f])) for i in held}
    cos, protected_pairs, pairs = [], 0, 0
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        for i, faces in held.items():
            order = rng.permutation(len(faces))
            inf, test = order[:INFERENCE_PHOTOS], order[INFERENCE_PHOTOS:]
            with generators_root(root):
                mask = method.craft_mask(to_canonical(torch.from_numpy(faces[inf])), [surrogate])
            prot_f = embed_uint8(surrogate, protect(faces[test], scale_to_budget(mask, DEFAULT_BUDGET)))
            clean_test = clean_f[i][test]
            cos.append((prot_f * clean_test).sum(1))  # unit-length embeddings
            found = identification(others[i], {i: prot_f}, {i: clean_test}, ks=(1,))  # the benchmark's 1:N counting
            protected_pairs += found.pairs - found.hits[1]
            pairs += found.pairs
    return {"cos": float(np.concatenate(cos).mean()), "top1": protected_pairs / pairs, "probes": pairs}


def card_summary(method: str, source: str, root: Path) -> str:
    """Steps and recorded validation cosine of the checkpoint a generator method uses ('' for other methods)."""
    spec = getattr(type(create_method(method)), "training", None)
    if spec is None:
        return ""
    card_path = root / source / f"{spec.checkpoint}.json"
    if not card_path.is_file():
        raise BenchError(f"{root} holds no {spec.checkpoint} checkpoint for {source} ({card_path} is missing); "
                         f"a candidate is a BENCH_GENERATORS folder: <root>/{source}/{spec.checkpoint}.safetensors")
    card = json.loads(card_path.read_text())
    return f"steps {card['steps']:5d}  card val_cos {card['validation']['val_cos']:.4f}"


@dataclass(frozen=True)
class Candidate:
    root: Path
    card: str  # the checkpoint card's steps and recorded validation ('' for a method without one)
    cos: float
    top1: float
    probes: int

    def line(self) -> str:
        return (f"{str(self.root):60s} {self.card}  held-out cos {self.cos:.4f}  top1 {100 * self.top1:.1f}% "
                f"({self.probes} pairs)")


def best(candidates: list[Candidate]) -> Candidate:
    """The highest held-out Top-1 protection; the lower cosine breaks a tie."""
    return max(candidates, key=lambda c: (c.top1, -c.cos))


def select_checkpoints(method: str, source: str, roots: list[Path], *, draws: int = 3, distractors: int = 10,
                       seed: int = 0, held_per_identity: int | None = None, log=print) -> list[Candidate]:
    """Score every candidate root on the same held-out draws; ``held_per_identity`` limits each held-back
    person's photos (None: all of them; a test uses a slice)."""
    cards = [card_summary(method, source, Path(root)) for root in roots]  # a wrong folder fails before any work
    surrogate = create_recognizer(source)
    held_ids = held_back_identities()
    train_ids = [i for i in load_split("train").identities() if i not in held_ids]
    held = load_faces("train", held_ids, held_per_identity)
    gallery = load_faces("train", train_ids, distractors)
    distractor_f = embed_uint8(surrogate, np.concatenate(list(gallery.values())))
    log(f"held back: {', '.join(f'{i} ({len(f)})' for i, f in held.items())}; gallery distractors: {len(distractor_f)}")
    out = []
    for root, card in zip(roots, cards):
        result = score(method, Path(root), surrogate, held, distractor_f, draws, seed)
        out.append(Candidate(Path(root), card, result["cos"], result["top1"], result["probes"]))
        log(out[-1].line())
    return out
