"""Reference projections solved one query at a time with cvxpy (the way the official OPOM code does
it), used to validate :mod:`methods.subspace` and as the speed baseline.

Solver: CLARABEL (interior point) with tolerances tightened to 1e-13: at its defaults (1e-8) the
weights of near-zero anchors are off by ~1e-5, which is more than the agreement we test for. The
problem is posed as ``min ||A^T w - q||^2`` over ``w`` (cvxpy turns the sum of squares into a QP with an
identity Hessian on the residual, so it stays well posed when ``A A^T`` is singular). The projection
point is ``A^T w`` and the distance ``||q - A^T w||``, computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import torch

from .subspace import project

KINDS = ("center", "affine", "convex")

CLARABEL_TIGHT = dict(
    solver="CLARABEL",
    tol_gap_abs=1e-13,
    tol_gap_rel=1e-13,
    tol_feas=1e-13,
    tol_ktratio=1e-10,
    max_iter=500,
)


@dataclass(frozen=True)
class ReferenceProjection:
    point: np.ndarray  # B x D
    weights: np.ndarray  # B x n
    distance: np.ndarray  # B


def solve_one(q: np.ndarray, A: np.ndarray, kind: str, **solver_kw) -> np.ndarray:
    """Weights ``w`` (n,) minimising ``||q - A^T w||^2`` over the set ``kind`` for one query (D,)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    n = A.shape[0]
    w = cp.Variable(n)
    constraints = {
        "center": [w == np.full(n, 1.0 / n)],
        "affine": [cp.sum(w) == 1],
        "convex": [w >= 0, cp.sum(w) == 1],
    }[kind]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(A.T @ w - q)), constraints)
    problem.solve(**(solver_kw or CLARABEL_TIGHT))
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or w.value is None:
        raise RuntimeError(f"cvxpy {kind} projection failed: status {problem.status}")
    return np.asarray(w.value, dtype=np.float64)


def reference_projection(q, anchors, kind: str, **solver_kw) -> ReferenceProjection:
    """Solve each of the ``B`` queries separately; anchors ``n x D`` (shared) or ``B x n x D``."""
    qn = _np(q)
    An = _np(anchors)
    if An.ndim == 2:
        An = np.broadcast_to(An, (qn.shape[0], *An.shape))
    weights = np.stack([solve_one(qn[i], An[i], kind, **solver_kw) for i in range(qn.shape[0])])
    points = np.einsum("bn,bnd->bd", weights, An)
    return ReferenceProjection(points, weights, np.linalg.norm(qn - points, axis=-1))


def relative_errors(q, anchors, kind: str, **solver_kw) -> dict[str, float]:
    """Max over queries of the error of :func:`methods.subspace.project` vs cvxpy.

    Error of ``x`` vs reference ``x_ref`` is ``||x - x_ref|| / max(||x_ref||, s)`` with the problem
    scale ``s = max(||q||, max_i ||a_i||)`` per query: plain relative error when the reference is at
    least the feature norm, and error in units of the feature norm when it is smaller (e.g. the
    distance of a query inside the hull is 0, where a pure relative error is undefined).
    Returns ``{"point": ..., "distance": ...}``.
    """
    ours = project(torch.as_tensor(q), torch.as_tensor(anchors), kind)
    ref = reference_projection(q, anchors, kind, **solver_kw)
    qn, An = _np(q), _np(anchors)
    s = np.maximum(np.linalg.norm(qn, axis=-1), np.linalg.norm(An, axis=-1).max(axis=-1))
    p_err = np.linalg.norm(_np(ours.point) - ref.point, axis=-1)
    d_err = np.abs(_np(ours.distance) - ref.distance)
    return {
        "point": float((p_err / np.maximum(np.linalg.norm(ref.point, axis=-1), s)).max()),
        "distance": float((d_err / np.maximum(ref.distance, s)).max()),
    }


def check_against_cvxpy(q, anchors, kind: str, **solver_kw) -> float:
    """Max relative error (point and distance, see :func:`relative_errors`) of the batched torch
    projection ``kind`` vs the per-query cvxpy reference. ``q``: ``B x D``; anchors ``n x D`` or
    ``B x n x D``; tensors or arrays (compared in float64)."""
    return max(relative_errors(q, anchors, kind, **solver_kw).values())


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)
