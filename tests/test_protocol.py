"""The identification protocol, search backends and budgets on small hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.budget import l2_255, protect, realised_l2, scale_to_budget
from bench.errors import ShapeError
from bench.protocol import identification, threshold_at_far, tpr_at_far
from bench.search import make_index


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_identification_counts_on_a_hand_built_case():
    # 2-D features: person A near (1,0), person B near (0,1); one distractor at 45 degrees
    distractors = unit([[1, 1]])
    index = make_index("torch", distractors)
    a = unit([[1, 0.0], [1, 0.1], [1, -0.1]])  # all three closer to each other than to the distractor
    b = unit([[0.2, 1], [1, 0.9], [0.1, 1]])  # photo 1 of B is closer to the distractor than to B's others
    result = identification(index, {"A": a, "B": b}, {"A": a, "B": b}, ks=(1, 2))
    assert result.pairs == 2 * 3 * 2  # identities x T x (T-1)
    assert result.per_identity["A"] == {1: 6, 2: 6}
    # B: probe 1 vs gallery 0/2 loses to the distractor at k=1 (and gallery 1 vs probes 0/2 too)
    sims = b @ b.T
    d = (b @ distractors.T).ravel()
    expected_top1 = sum(1 for i in range(3) for j in range(3) if i != j and sims[i, j] >= d[i])
    assert result.per_identity["B"][1] == expected_top1 == 2
    assert result.per_identity["B"][2] == 6  # with k=2 the single distractor cannot push anything out
    assert result.accuracy(1) == pytest.approx(8 / 12) and result.protection(1) == pytest.approx(4 / 12)


def test_masked_probes_that_look_like_a_distractor_are_protected():
    distractors = unit(np.eye(4)[1:])  # three distractors on the other axes
    index = make_index("faiss", distractors)
    clean = unit([[1, 0.05, 0, 0], [1, 0, 0.05, 0], [1, 0, 0, 0.05]])
    masked = unit([[0.1, 1, 0, 0], [0.1, 0, 1, 0], [0.1, 0, 0, 1]])  # each pushed onto a distractor
    result = identification(index, {"p": masked}, {"p": clean}, ks=(1, 5))
    assert result.hits == {1: 0, 5: 6}  # top-5 covers the whole 4-item gallery
    assert result.protection(1) == 1.0 and result.protection(5) == 0.0


def test_ties_go_to_the_true_match():
    index = make_index("torch", unit([[1, 0]]))
    same = unit([[1, 0], [1, 0]])  # gallery photo and distractor identical to the probe
    assert identification(index, {"p": same}, {"p": same}, ks=(1,)).hits[1] == 2


def test_faiss_and_torch_give_identical_ranks_including_near_ties():
    rng = np.random.default_rng(0)
    gallery = unit(rng.standard_normal((3000, 64))).astype(np.float32)
    gallery[1000:1010] = gallery[5]  # exact duplicates: ties broken by index in both backends
    queries = unit(rng.standard_normal((500, 64))).astype(np.float32)
    queries[:20] = gallery[:20] + 1e-7  # near-ties at the top
    s_t, i_t = make_index("torch", gallery).topk(queries, 10)
    s_f, i_f = make_index("faiss", gallery).topk(queries, 10)
    assert np.array_equal(i_t, i_f) and np.array_equal(s_t, s_f)
    full = queries.astype(np.float64) @ gallery.astype(np.float64).T
    assert np.allclose(s_t, -np.sort(-full, axis=1)[:, :10], atol=1e-12)


def test_search_rejects_mismatched_dimensions():
    with pytest.raises(ShapeError, match="queries must be N x 8"):
        make_index("torch", np.ones((5, 8), np.float32)).topk(np.ones((2, 4), np.float32), 1)


def test_tpr_at_far():
    impostor = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    assert threshold_at_far(impostor, 1e-3) == pytest.approx(0.998)  # only 0.999 lies above
    assert tpr_at_far(np.array([0.9985, 0.99, 1.0, 0.5]), impostor, 1e-3) == 0.5


def test_budget_scaling_clipping_and_quantisation():
    mask = torch.randn(3, 112, 112, generator=torch.Generator().manual_seed(0))
    scaled = scale_to_budget(mask, 1200.0)
    assert float(l2_255(scaled)) == pytest.approx(1200.0, rel=1e-6)
    assert float(l2_255(scale_to_budget(torch.zeros(3, 112, 112), 1200.0))) == 0.0
    faces = np.full((2, 112, 112, 3), 128, np.uint8)
    faces[1] = 250  # near white: the mask is clipped, so the realised norm drops
    out = protect(faces, scaled)
    assert out.dtype == np.uint8
    l2 = realised_l2(faces, out)
    assert l2[0] == pytest.approx(1200.0, rel=0.02)  # rounding moves it a little
    assert l2[1] < l2[0]
    with pytest.raises(ShapeError):
        protect(faces, torch.zeros(3, 64, 64))
    per_image = scale_to_budget(torch.randn(2, 3, 112, 112), 500.0)
    assert torch.allclose(l2_255(per_image), torch.tensor([500.0, 500.0]))
