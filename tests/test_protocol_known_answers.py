"""Known answers for the protocol's edge cases and the budget's units (bench/protocol.py, bench/budget.py), each
added for a mutant that survived tests/test_protocol.py (a mutation run over the modules that compute the
published numbers): a gallery of exactly k distractors, a genuine score equal to the threshold, the 0-255
scale itself, the clipping at both ends of the pixel range, a per-image mask of the wrong count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.budget import DEFAULT_BUDGET, PIXEL_SCALE, l2_255, protect, realised_l2, scale_to_budget
from bench.errors import ShapeError
from bench.protocol import Identification, identification, threshold_at_far, tpr_at_far, tpr_at_threshold
from bench.search import make_index


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_a_gallery_of_exactly_k_distractors_still_ranks_them():
    """One distractor, k = 1: a probe whose distractor scores above its true match is not identified (a gallery
    as large as k is searched like any other; only a smaller one lets everything through)."""
    index = make_index("torch", unit([[0.0, 1.0]]))
    gallery = unit([[1.0, 0.0], [1.0, 0.05]])
    probes = unit([[0.1, 1.0], [1.0, 0.0]])  # photo 0 masked onto the distractor, photo 1 clean
    result = identification(index, {"p": probes}, {"p": gallery}, ks=(1, 2))
    assert result.per_identity["p"] == {1: 1, 2: 2}, "k = 1: probe 0 loses to the distractor; k = 2 > gallery: both"
    assert result.pairs == 2
    with pytest.raises(ShapeError, match="T >= 2"):
        identification(index, {"p": probes[:1]}, {"p": gallery[:1]})
    two = identification(index, {"p": probes}, {"p": gallery})  # T = 2, the smallest a person can have
    assert two.ks == (1, 5) and two.pairs == 2
    assert two.genuine.shape == (2,) and two.genuine == pytest.approx([probes[0] @ gallery[1], probes[1] @ gallery[0]])


def brute_force_hits(probes, gallery, distractors, k):
    """Per identity, pairs (probe i, gallery photo j != i) with fewer than k distractors scoring above the match."""
    out = {}
    for ident in probes:
        n = 0
        for i, p in enumerate(probes[ident]):
            above = distractors @ p
            for j, g in enumerate(gallery[ident]):
                n += i != j and int((above > p @ g).sum()) < k
        out[ident] = n
    return out


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_identification_matches_a_brute_force_count_over_many_people(backend):
    """Five people of 3-4 photos among 40 distractors, random features: every person's hits at k = 1, 2, 5 as
    counted pair by pair (each person's probes are matched with their own rows of the search results)."""
    rng = np.random.default_rng(5)
    centres = unit(rng.normal(size=(5, 8)))
    gallery = {f"p{i}": unit(centres[i] + 0.6 * rng.normal(size=(3 + i % 2, 8))) for i in range(5)}
    probes = {i: unit(g + 0.5 * rng.normal(size=g.shape)) for i, g in gallery.items()}
    distractors = unit(rng.normal(size=(40, 8)))
    result = identification(make_index(backend, distractors.astype(np.float32)), probes, gallery, ks=(1, 2, 5))
    for k in (1, 2, 5):
        expected = brute_force_hits(probes, gallery, distractors, k)
        assert {i: h[k] for i, h in result.per_identity.items()} == expected, k
        assert result.hits[k] == sum(expected.values())
    assert 0 < result.hits[1] < result.hits[5] < result.pairs == sum(len(p) * (len(p) - 1) for p in probes.values())


def test_verification_accepts_only_scores_above_the_threshold():
    impostor = np.array([0.1, 0.2, 0.3, 0.4])
    assert threshold_at_far(impostor, 0.25) == 0.3  # one impostor (0.4) of 4 above it
    assert threshold_at_far(impostor, 0.0) == 0.4
    assert threshold_at_far(impostor, 1.0) == -math.inf, "every impostor may pass: no threshold"
    assert tpr_at_threshold(np.array([0.3, 0.31, 0.29, 0.5]), 0.3) == 0.5, "a score equal to the threshold is rejected"
    assert tpr_at_far(np.array([0.3, 0.31]), impostor, 0.25) == 0.5
    assert math.isnan(tpr_at_threshold(np.array([]), 0.3))
    assert math.isnan(Identification((1,), 0, {1: 0}).accuracy(1)), "no pairs: no rate, not 0"
    impostor = np.arange(2000) / 2000.0  # the default FAR is 1e-3: 2 of 2,000 impostors above the threshold
    assert tpr_at_far(np.array([0.9985, 0.9995]), impostor) == 0.5 == tpr_at_far(np.array([0.9985, 0.9995]), impostor, 1e-3)


def test_the_budget_is_in_0_255_pixel_units():
    assert PIXEL_SCALE == 255.0 and DEFAULT_BUDGET == 1200.0  # the paper's L2 of 1,200 on 0-255 pixels
    one_level = torch.full((3, 112, 112), 1 / 255)  # one grey level on every channel of every pixel
    assert float(l2_255(one_level)) == pytest.approx(math.sqrt(3 * 112 * 112))
    faces = np.full((1, 112, 112, 3), 100, np.uint8)
    assert np.array_equal(protect(faces, one_level), faces + 1)
    assert realised_l2(faces, protect(faces, one_level))[0] == pytest.approx(math.sqrt(3 * 112 * 112))
    scaled = scale_to_budget(one_level, 1200.0)
    assert torch.allclose(scaled, torch.full_like(one_level, 1200.0 / math.sqrt(3 * 112 * 112) / 255), rtol=1e-12)


def test_a_tiny_mask_is_scaled_up_to_the_budget_and_only_an_all_zero_one_stays_zero():
    tiny = torch.full((3, 112, 112), 0.5 / math.sqrt(3 * 112 * 112) / 255, dtype=torch.float64)  # L2 0.5 (0-255)
    assert float(l2_255(tiny)) == pytest.approx(0.5)
    assert float(l2_255(scale_to_budget(tiny, 1200.0))) == pytest.approx(1200.0)
    assert float(l2_255(scale_to_budget(torch.zeros(3, 112, 112), 1200.0))) == 0.0


def test_protect_clips_at_both_ends_and_refuses_a_mask_per_image_of_the_wrong_count():
    faces = np.zeros((2, 112, 112, 3), np.uint8)
    faces[1] = 255
    down, up = torch.full((3, 112, 112), -10 / 255), torch.full((3, 112, 112), 10 / 255)
    assert (protect(faces, down) == np.array([0, 245], np.uint8)[:, None, None, None]).all()
    assert (protect(faces, up) == np.array([10, 255], np.uint8)[:, None, None, None]).all()
    per_image = torch.stack([up, down])
    assert (protect(faces, per_image) == np.array([10, 245], np.uint8)[:, None, None, None]).all()
    with pytest.raises(ShapeError, match="does not fit"):
        protect(faces, torch.stack([up, down, up]))
    half = torch.full((3, 112, 112), 0.4 / 255)  # rounds to the nearest level, not down and not up
    assert (protect(faces[:1] + 7, half) == 7).all() and (protect(faces[:1] + 7, half + 0.2 / 255) == 8).all()
