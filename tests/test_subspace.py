"""Batched feature-subspace projections (methods.subspace) vs per-query cvxpy, gradients, devices.

The "face feature" problems here are synthetic: unit vectors clustered around an identity
direction (pairwise cosine ~0.6-0.8), named ``..._synthetic_clustered_features``. Tests on real
recognizer features can call ``methods.reference_cvxpy.check_against_cvxpy``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.errors import UnknownNameError
from methods.reference_cvxpy import check_against_cvxpy, reference_projection
from methods.subspace import (
    PROJECTIONS,
    Projection,
    affine_hull,
    class_center,
    convex_hull,
    project,
    project_simplex,
    subspace_loss,
)

KINDS = ("center", "affine", "convex")
TOL = 1e-6  # required relative agreement with cvxpy (point and distance)


def _gaussian(B: int, n: int, D: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, D, generator=g, dtype=torch.float64),
        torch.randn(n, D, generator=g, dtype=torch.float64),
    )


def _around(u: torch.Tensor, k: int, cos_to_u: float, g: torch.Generator) -> torch.Tensor:
    """k unit vectors with cosine ``cos_to_u`` to unit ``u`` and random orthogonal parts, so that two
    of them have cosine ~``cos_to_u`` (the orthogonal parts are nearly orthogonal in high D)."""
    x = torch.randn(k, u.numel(), generator=g, dtype=torch.float64)
    x = x - (x @ u)[:, None] * u
    x = x / x.norm(dim=1, keepdim=True)
    return cos_to_u**0.5 * u + (1 - cos_to_u) ** 0.5 * x


def _identity(D: int, g: torch.Generator) -> torch.Tensor:
    u = torch.randn(D, generator=g, dtype=torch.float64)
    return u / u.norm()


def _clustered(B: int, n: int, D: int, seed: int, cos: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors: n unit features of one identity (pairwise cos ~``cos``). Queries: a mix of further
    photos of the same identity (near or inside the hull), features pushed half-way to another
    identity (what a mask does), and other identities."""
    g = torch.Generator().manual_seed(seed)
    u, v = _identity(D, g), _identity(D, g)
    anchors = _around(u, n, cos, g)
    same = _around(u, B, cos, g)
    masked = same + 0.5 * (_around(v, B, cos, g) - same)
    other = _around(_identity(D, g), B, cos, g)
    q = torch.cat([same, masked / masked.norm(dim=1, keepdim=True), other])
    pick = torch.randperm(3 * B, generator=g)[:B]
    return q[pick], anchors


def _pairwise_cos(x: torch.Tensor) -> torch.Tensor:
    c = x @ x.T
    return c[~torch.eye(len(x), dtype=torch.bool)]


# --------------------------------------------------------------------------------------------------
# agreement with cvxpy


RANDOM_CASES = [  # (B, n, D): n in {2, 5, 10, 20}, D in {3, 128, 512}, incl. n > D
    (1, 2, 3),
    (4, 2, 512),
    (3, 5, 3),
    (3, 5, 128),
    (4, 10, 512),
    (3, 10, 3),
    (3, 20, 3),
    (2, 20, 128),
    (2, 20, 512),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B,n,D", RANDOM_CASES)
def test_matches_cvxpy_random_gaussian(kind: str, B: int, n: int, D: int) -> None:
    q, A = _gaussian(B, n, D, seed=100 * n + D)
    assert check_against_cvxpy(q, A, kind) < TOL


@pytest.mark.parametrize("kind", ("affine", "convex"))
def test_query_inside_hull_has_zero_distance(kind: str) -> None:
    g = torch.Generator().manual_seed(3)
    A = torch.randn(6, 5, generator=g, dtype=torch.float64)
    w = torch.distributions.Dirichlet(torch.ones(6, dtype=torch.float64)).sample((4,))
    q = w @ A  # convex (hence affine) combinations
    res = project(q, A, kind)
    assert res.distance.max() < 1e-7
    torch.testing.assert_close(res.point, q, rtol=0, atol=1e-7)
    assert check_against_cvxpy(q, A, kind) < TOL


def test_affine_hull_is_whole_space_when_n_exceeds_d() -> None:
    q, A = _gaussian(5, 20, 3, seed=7)  # 20 generic points span R^3 affinely
    res = affine_hull(q, A)
    torch.testing.assert_close(res.point, q, rtol=0, atol=1e-12)
    assert res.distance.max() < 1e-12


@pytest.mark.parametrize("kind", ("affine", "convex"))
def test_duplicated_anchors_rank_deficient(kind: str) -> None:
    q, A = _gaussian(3, 4, 128, seed=11)
    A = torch.cat([A, A[:2], A[:1]])  # 7 anchors, affine rank 3
    assert check_against_cvxpy(q, A, kind) < TOL
    # Duplicates change neither the set nor its nearest point.
    torch.testing.assert_close(project(q, A, kind).point, project(q, A[:4], kind).point, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,D", [(10, 512), (5, 128), (20, 512)])
def test_matches_cvxpy_synthetic_clustered_features(kind: str, n: int, D: int) -> None:
    q, A = _clustered(8, n, D, seed=n + D)
    cos = _pairwise_cos(A)
    assert 0.6 < cos.mean() < 0.8  # the structure the test claims
    assert check_against_cvxpy(q, A, kind) < TOL


@pytest.mark.parametrize("kind", KINDS)
def test_matches_cvxpy_synthetic_clustered_features_float32_per_query(kind: str) -> None:
    """Float32 features (what recognizers emit), each query with its own identity's anchors."""
    pairs = [_clustered(1, 10, 512, seed=s, cos=c) for s, c in zip(range(6), (0.6, 0.65, 0.7, 0.75, 0.8, 0.7))]
    q = torch.cat([p[0] for p in pairs]).float()
    A = torch.stack([p[1] for p in pairs]).float()
    res = project(q, A, kind)
    assert res.point.dtype == res.distance.dtype == torch.float32
    assert check_against_cvxpy(q, A, kind) < TOL


# --------------------------------------------------------------------------------------------------
# solver properties


def test_convex_weights_are_feasible_and_reproduce_the_point() -> None:
    q, A = _clustered(16, 10, 512, seed=5)
    res = convex_hull(q, A)
    assert isinstance(res, Projection)
    assert res.weights.min() >= 0
    torch.testing.assert_close(res.weights.sum(-1), torch.ones(16, dtype=torch.float64))
    torch.testing.assert_close(res.weights @ A, res.point, rtol=0, atol=1e-12)
    assert res.gap is not None and (res.gap <= 1e-14 * 4).all()  # s^2 <= 4 for unit features
    assert res.iterations <= 100


def test_affine_and_center_weights() -> None:
    q, A = _gaussian(5, 6, 64, seed=2)
    aff, cen = affine_hull(q, A), class_center(q, A)
    torch.testing.assert_close(aff.weights.sum(-1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(aff.weights @ A, aff.point, rtol=0, atol=1e-10)
    torch.testing.assert_close(cen.weights, torch.full((5, 6), 1 / 6, dtype=torch.float64))
    torch.testing.assert_close(cen.point, A.mean(0).expand(5, -1))
    # Nested sets: centre in convex hull in affine hull, so distances can only shrink.
    con = convex_hull(q, A)
    assert (aff.distance <= con.distance + 1e-12).all() and (con.distance <= cen.distance + 1e-12).all()


def test_single_anchor() -> None:
    q, A = _gaussian(3, 1, 8, seed=4)
    for kind in KINDS:
        res = project(q, A, kind)
        torch.testing.assert_close(res.point, A.expand(3, -1))
        torch.testing.assert_close(res.weights, torch.ones(3, 1, dtype=torch.float64))


def test_project_simplex_satisfies_kkt() -> None:
    v = torch.randn(50, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    w = project_simplex(v)
    assert w.min() >= 0
    torch.testing.assert_close(w.sum(-1), torch.ones(50, dtype=torch.float64))
    # KKT: v - w equals theta on the support and v <= theta off it.
    theta = torch.where(w > 0, v - w, torch.full_like(v, -torch.inf)).amax(-1, keepdim=True)
    torch.testing.assert_close(torch.where(w > 0, v - w, theta), theta.expand_as(v))
    assert (torch.where(w == 0, v, -torch.inf) <= theta + 1e-12).all()
    torch.testing.assert_close(project_simplex(w), w)  # idempotent


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no "did not reach tol" warning allowed
def test_convex_thin_faces_low_dim_converge() -> None:
    """Many anchors in 2-3 D make thin faces, FISTA's slowest case; polishing must still converge."""
    for D in (2, 3):
        q, A = _gaussian(6, 50, D, seed=60 + D)
        res = convex_hull(q, A)
        assert res.iterations < 1000
        assert check_against_cvxpy(q, A, "convex") < TOL


def test_plain_fista_agrees_with_polished_solver() -> None:
    q, A = _clustered(32, 10, 512, seed=12)
    plain, polished = convex_hull(q, A, polish=False), convex_hull(q, A)
    assert plain.iterations > 0
    torch.testing.assert_close(plain.point, polished.point, rtol=0, atol=1e-9)


def test_unconverged_solver_warns() -> None:
    q, A = _gaussian(4, 10, 3, seed=9)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        res = convex_hull(q, A, max_iter=1, check_every=1, polish=False)
    assert res.iterations == 1


def test_registry_names_and_unknown_name() -> None:
    assert PROJECTIONS == {"center": class_center, "affine": affine_hull, "convex": convex_hull}
    with pytest.raises(UnknownNameError, match="convex"):
        project(*_gaussian(1, 2, 3, seed=0), "conv")


def test_shape_errors() -> None:
    q, A = _gaussian(2, 3, 4, seed=0)
    with pytest.raises(ValueError):
        convex_hull(q, A[:, :3])
    with pytest.raises(ValueError):
        convex_hull(q, A.expand(3, 3, 4))


# --------------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("kind", KINDS)
def test_loss_gradient_is_envelope_gradient_and_matches_finite_differences(kind: str) -> None:
    q0, A = _clustered(4, 10, 64, seed=21)
    q = q0.clone().requires_grad_(True)
    loss = subspace_loss(q, A, kind)
    torch.testing.assert_close(loss.detach(), project(q0, A, kind).distance ** 2)
    loss.sum().backward()
    p = project(q0, A, kind).point
    torch.testing.assert_close(q.grad, 2 * (q0 - p), rtol=0, atol=1e-12)

    # Central differences of the true min-distance value d(q)^2 along random directions.
    g = torch.Generator().manual_seed(0)
    h = 1e-5
    for _ in range(3):
        e = torch.randn(q0.shape, generator=g, dtype=torch.float64)
        e = e / e.norm(dim=1, keepdim=True)
        fd = (project(q0 + h * e, A, kind).distance ** 2 - project(q0 - h * e, A, kind).distance ** 2) / (2 * h)
        torch.testing.assert_close(fd, (q.grad * e).sum(-1), rtol=0, atol=1e-6)


def test_loss_reductions_and_anchor_constness() -> None:
    q, A = _clustered(3, 5, 32, seed=1)
    q = q.float().requires_grad_(True)
    A = A.float().requires_grad_(True)
    per = subspace_loss(q, A, "convex")
    assert per.shape == (3,) and per.dtype == torch.float32
    torch.testing.assert_close(subspace_loss(q, A, "convex", reduction="mean"), per.mean())
    torch.testing.assert_close(subspace_loss(q, A, "convex", reduction="sum"), per.sum())
    per.sum().backward()
    assert A.grad is None  # projection is a constant: no gradient to the anchors
    with pytest.raises(ValueError):
        subspace_loss(q, A, "convex", reduction="avg")


# --------------------------------------------------------------------------------------------------
# batching, dtypes, devices


@pytest.mark.parametrize("kind", KINDS)
def test_shared_and_per_query_anchors_agree(kind: str) -> None:
    q, A = _clustered(12, 10, 256, seed=8)
    shared = project(q, A, kind)
    per_query = project(q, A.expand(12, -1, -1).clone(), kind)
    for a, b in zip((shared.point, shared.distance, shared.weights), (per_query.point, per_query.distance, per_query.weights)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_per_query_anchors_equal_one_query_at_a_time(kind: str) -> None:
    problems = [_clustered(1, 6, 64, seed=s) for s in range(5)]
    q = torch.cat([p[0] for p in problems])
    A = torch.stack([p[1] for p in problems])
    batched = project(q, A, kind)
    for i, (qi, Ai) in enumerate(problems):
        single = project(qi, Ai, kind)
        torch.testing.assert_close(batched.point[i], single.point[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(batched.distance[i], single.distance[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_and_float64_paths_agree(kind: str) -> None:
    q, A = _clustered(8, 10, 512, seed=30)
    r64 = project(q, A, kind)
    r32 = project(q.float(), A.float(), kind)
    assert r64.point.dtype == torch.float64 and r32.point.dtype == torch.float32
    assert r32.weights.dtype == torch.float32
    # Differences come only from rounding the inputs to float32.
    torch.testing.assert_close(r32.point.double(), r64.point, rtol=0, atol=1e-5)
    torch.testing.assert_close(r32.distance.double(), r64.distance, rtol=0, atol=1e-5)


def test_reference_solver_is_exact_on_a_known_answer() -> None:
    """Sanity of the reference itself: projection of (x, 1) onto the segment [(0,0), (2,0)]."""
    q = np.array([[0.5, 1.0], [3.0, 1.0]])
    A = np.array([[0.0, 0.0], [2.0, 0.0]])
    ref = reference_projection(q, A, "convex")
    np.testing.assert_allclose(ref.point, [[0.5, 0.0], [2.0, 0.0]], atol=1e-10)
    np.testing.assert_allclose(ref.distance, [1.0, 2**0.5], atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device in this environment; CPU paths are tested above")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shared", (True, False))
def test_cuda_matches_cpu(kind: str, shared: bool) -> None:
    q, A = _clustered(32, 10, 512, seed=40)
    if not shared:
        A = A.expand(32, -1, -1).clone()
    cpu = project(q.float(), A.float(), kind)
    gpu = project(q.float().cuda(), A.float().cuda(), kind)
    assert gpu.point.device.type == "cuda" and gpu.point.dtype == torch.float32
    torch.testing.assert_close(gpu.point.cpu(), cpu.point, rtol=0, atol=1e-6)
    torch.testing.assert_close(gpu.distance.cpu(), cpu.distance, rtol=0, atol=1e-6)
    qc = q.cuda().requires_grad_(True)
    subspace_loss(qc, A.cuda(), kind).sum().backward()
    torch.testing.assert_close(qc.grad.cpu(), 2 * (q - project(q, A, kind).point), rtol=0, atol=1e-10)
