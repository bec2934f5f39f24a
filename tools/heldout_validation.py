"""Score candidate generator checkpoints on every photo of the identities training held back.

The trainer's own validation (``bench/training/validate.py``) uses 10 inference + 10 test photos of
4 held-back identities: enough to follow a run, too noisy to choose between two checkpoints (its
cosine moves by ~0.003 between neighbouring evaluations of the same run). This tool uses *all* ~150
photos of the same 4 identities, which no training run ever sees, and several random draws of the 10
inference photos, so checkpoints can be compared (paired, same draws) without touching the test splits:

* each draw: the method's mask from 10 inference photos (the real method code path, ``craft``),
  rescaled to L2 1,200 and added to every other photo of that person, saved as uint8;
* ``cos``: mean cosine(protected, clean) on the surrogate (lower = stronger);
* ``top1``: Top-1 protection as the benchmark's 1:N protocol counts it (``bench/protocol.py``): each
  other clean photo of the person in turn is their only gallery photo, among distractors = every photo
  of the other held-back people and ``--distractors`` clean photos of each training identity; ties go
  to the true match.

Each ``--generators`` root is a ``BENCH_GENERATORS`` folder (``<root>/<source>/<checkpoint>.*``).
Usage::

    python tools/heldout_validation.py --source dlib-resnet --method advcloak \\
        --generators methods/weights results/scratch/weights
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

import numpy as np
import torch


def load_faces(split: str, identities: list[str], per_identity: int | None) -> dict[str, np.ndarray]:
    """Aligned uint8 crops of the first ``per_identity`` training photos (all with None) of each identity."""
    from bench.data.splits import load_split
    from bench.features import FaceSource

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


def score(method_name: str, root: Path, surrogate, held: dict[str, np.ndarray], distractor_f: np.ndarray,
          draws: int, seed: int) -> dict[str, float]:
    from bench.budget import DEFAULT_BUDGET, protect, scale_to_budget
    from bench.features import embed_uint8
    from bench.protocol import identification
    from bench.search import make_index
    from bench.zoo.base import to_canonical
    from methods import create_method

    method = create_method(method_name)
    clean_f = {i: embed_uint8(surrogate, f) for i, f in held.items()}
    # each person's distractors: every photo of the other held-back people, then the training identities'
    others = {i: make_index("torch", np.concatenate([clean_f[j] for j in held if j != i] + [distractor_f])) for i in held}
    cos, protected_pairs, pairs = [], 0, 0
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        for i, faces in held.items():
            order = rng.permutation(len(faces))
            inf, test = order[:10], order[10:]
            with generators_root(root):
                mask = method.craft(to_canonical(torch.from_numpy(faces[inf])), [surrogate])
            prot_f = embed_uint8(surrogate, protect(faces[test], scale_to_budget(mask, DEFAULT_BUDGET)))
            clean_test = clean_f[i][test]
            cos.append((prot_f * clean_test).sum(1))  # unit-length embeddings
            found = identification(others[i], {i: prot_f}, {i: clean_test}, ks=(1,))  # the benchmark's 1:N counting
            protected_pairs += found.pairs - found.hits[1]
            pairs += found.pairs
    return {"cos": float(np.concatenate(cos).mean()), "top1": protected_pairs / pairs, "probes": pairs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--method", required=True, help="a person-level generator method (advfaces-plus, advcloak...)")
    ap.add_argument("--generators", type=Path, nargs="+", required=True)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--distractors", type=int, default=10, help="clean photos per training identity in the gallery")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from bench.data.splits import load_split
    from bench.features import embed_uint8
    from bench.training.data import held_back_identities
    from bench.zoo import create_recognizer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    surrogate = create_recognizer(args.source)
    held_ids = held_back_identities()
    train_ids = [i for i in load_split("train").identities() if i not in held_ids]
    held = load_faces("train", held_ids, None)
    distractors = load_faces("train", train_ids, args.distractors)
    distractor_f = embed_uint8(surrogate, np.concatenate(list(distractors.values())))
    print(f"held back: {', '.join(f'{i} ({len(f)})' for i, f in held.items())}; gallery distractors: {len(distractor_f)}")
    for root in args.generators:
        result = score(args.method, root, surrogate, held, distractor_f, args.draws, args.seed)
        print(f"{str(root):60s} {card_summary(args.method, args.source, root)}  held-out cos {result['cos']:.4f}  top1 {100 * result['top1']:.1f}% ({result['probes']} pairs)", flush=True)


def card_summary(method: str, source: str, root: Path) -> str:
    """Steps and recorded validation cosine of the checkpoint a generator method uses ('' for other methods)."""
    from methods import create_method

    spec = getattr(type(create_method(method)), "training", None)
    if spec is None:
        return ""
    card = json.loads((root / source / f"{spec.checkpoint}.json").read_text())
    return f"steps {card['steps']:5d}  card val_cos {card['validation']['val_cos']:.4f}"


if __name__ == "__main__":
    main()
