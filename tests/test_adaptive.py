"""The adaptive attacker (bench/stages/adaptive.py): a ridge map from protected to clean features,
fitted on other people's photos only."""

from __future__ import annotations

import numpy as np
import pytest

from bench.search import make_index
from bench.stages.adaptive import AdaptiveRidge, ridge_map
from bench.stages.evaluator import CleanGallery
from bench.stages.protocols import ProbeIdentification


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def handmade_gallery(people=20, photos=6, dim=32, seed=0):
    """Synthetic features (a fixture, not a recognizer): each person a direction plus per-photo noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))
    clean = {f"p{i:02d}": unit(centres[i] + 0.3 * rng.normal(size=(photos, dim))) for i in range(people)}
    distractors = unit(rng.normal(size=(200, dim)))
    return CleanGallery("synthetic", make_index("torch", distractors), distractors, clean), rng


def test_the_attacker_undoes_a_fixed_feature_space_mask_on_handmade_features():
    gallery, rng = handmade_gallery()
    rotation, _ = np.linalg.qr(rng.normal(size=(32, 32)))  # the "mask": every feature rotated the same way
    probes = {i: unit(f @ rotation) for i, f in gallery.people.items()}
    static = ProbeIdentification().score(gallery, probes)["top1_protection"]
    adaptive = AdaptiveRidge(strength=1e-3).score(gallery, probes)["adaptive_top1_protection"]
    print(f"static {static:.3f} adaptive {adaptive:.3f}")
    assert static > 0.8 and adaptive < 0.2, "a mask the attacker can learn to invert protects nobody"


def test_no_mask_is_left_as_it_was_and_no_person_scores_their_own_map_on_handmade_features():
    gallery, _ = handmade_gallery()
    same = {i: f.copy() for i, f in gallery.people.items()}
    static = ProbeIdentification().score(gallery, same)
    adaptive = AdaptiveRidge().score(gallery, same)
    assert adaptive["adaptive_top1_protection"] == pytest.approx(static["top1_protection"], abs=1e-9)
    clean = np.concatenate(list(gallery.people.values()))
    assert np.allclose(ridge_map(clean, clean, 0.1), np.eye(32), atol=1e-9), "clean -> clean is the identity"
    # a fold's map is fitted on the other folds' people only: p00 (its own fold here) is scored through
    # the map of the other 19, computed by hand
    from bench.protocol import identification

    others = [i for i in sorted(same) if i != "p00"]
    a = ridge_map(np.concatenate([same[i] for i in others]), np.concatenate([gallery.people[i] for i in others]), 0.1)
    mapped = unit(same["p00"].astype(np.float64) @ a)
    expected = identification(gallery.index, {"p00": mapped}, {"p00": gallery.people["p00"]}, (1, 5)).per_identity["p00"]
    got = AdaptiveRidge(folds=20).score(gallery, same)["per_identity_hits"]["p00"]
    assert got == {str(k): v for k, v in expected.items()}
    assert AdaptiveRidge(folds=5).key("distractors").endswith("/folds5/ridge0.1")
