"""Batched distances from face features to a person's feature subspace (OPOM / AdvCloak).

A person is represented by ``n`` anchor features ``A`` (clean embeddings of their photos). A query
feature ``q`` is projected onto one of three sets built from the anchors:

* ``"center"``  -- the class centre, ``p = mean_i a_i`` (weights fixed to ``1/n``);
* ``"affine"``  -- the affine hull, ``min_w ||q - A^T w||^2  s.t.  sum(w) = 1``;
* ``"convex"``  -- the convex hull, ``min_w ||q - A^T w||^2  s.t.  w >= 0, sum(w) = 1``.

Shapes: queries ``q`` are ``B x D``; anchors are either ``n x D`` (shared by every query) or
``B x n x D`` (one set per query). Every function returns a :class:`Projection`.

Numerics (why the solvers look like they do):

* All three problems are invariant to translating queries and anchors together (``sum(w) = 1``),
  so we work relative to the anchor mean ``c``. For face features, which share a strong identity
  direction, this removes the dominant eigenvalue of the Gram matrix (``~n * cos``), making the
  convex-hull QP well conditioned, and avoids cancellation when ``q`` is close to the hull.
* The small problems (``n x n``) are solved in float64 whatever the input dtype, except on devices
  without float64 (Apple MPS); results are cast back to the promoted input dtype.
* Projections are constants for autograd (computed under ``no_grad``). To optimise a mask use
  :func:`subspace_loss`, whose gradient is the envelope-theorem gradient ``2 (q - p*)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from bench.errors import ShapeError, UnknownNameError

__all__ = [
    "Projection",
    "class_center",
    "affine_hull",
    "convex_hull",
    "project_simplex",
    "PROJECTIONS",
    "project",
    "subspace_loss",
]

# Convex-hull solver defaults (see convex_hull's docstring for their meaning and the measurements).
DEFAULT_TOL = 1e-14
DEFAULT_MAX_ITER = 3000
DEFAULT_CHECK_EVERY = 10
POLISH_DROPS = 2  # vertices a polish may drop from the FISTA support per check


@dataclass(frozen=True)
class Projection:
    """Result of projecting ``B`` queries onto an anchor set.

    point:      ``B x D`` projection point ``p = A^T w`` (equal up to rounding).
    weights:    ``B x n`` anchor weights (sum to 1; non-negative for "convex"). Not unique when the
                anchors are affinely dependent (e.g. ``n > D + 1`` or duplicates); ``point`` is.
    distance:   ``B`` Euclidean distance ``||q - p||`` (not squared).
    gap:        ``B`` Frank-Wolfe duality gap of the convex-hull QP, a certified upper bound on
                ``(||q - p||^2 - d*^2) / 2``; ``None`` for the closed-form projections.
    iterations: solver iterations actually run (0 for closed forms).
    """

    point: Tensor
    weights: Tensor
    distance: Tensor
    gap: Tensor | None = None
    iterations: int = 0


# --------------------------------------------------------------------------------------------------
# input handling


def _work_dtype(device: torch.device) -> torch.dtype:
    # float64 costs nothing at n x n sizes and buys ~8 digits; MPS has no float64 (MPS is untested).
    return torch.float32 if device.type == "mps" else torch.float64


def _prepare(q: Tensor, anchors: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
    """Validate shapes; return (q as B x D, anchors as (1|B) x n x D) in the work dtype, out dtype."""
    if q.dim() != 2:
        raise ShapeError(f"queries must be B x D, got {tuple(q.shape)}")
    if anchors.dim() not in (2, 3):
        raise ShapeError(f"anchors must be n x D or B x n x D, got {tuple(anchors.shape)}")
    if anchors.shape[-1] != q.shape[-1]:
        raise ShapeError(f"feature dims differ: queries {q.shape[-1]}, anchors {anchors.shape[-1]}")
    if anchors.dim() == 3 and anchors.shape[0] != q.shape[0]:
        raise ShapeError(f"per-query anchors need batch {q.shape[0]}, got {anchors.shape[0]}")
    if anchors.shape[-2] < 1:
        raise ShapeError("need at least one anchor")
    out_dtype = torch.promote_types(q.dtype, anchors.dtype)
    if not out_dtype.is_floating_point:
        raise ShapeError(f"features must be floating point, got {out_dtype}")
    work = _work_dtype(q.device)
    a3 = anchors if anchors.dim() == 3 else anchors.unsqueeze(0)
    return q.detach().to(work), a3.detach().to(device=q.device, dtype=work), out_dtype


def _centre(q: Tensor, a3: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(c, C, r): anchor mean (1|B) x D, centred anchors (1|B) x n x D, centred queries B x D."""
    c = a3.mean(dim=-2)
    return c, a3 - c.unsqueeze(-2), q - c


def _matvec(M: Tensor, x: Tensor) -> Tensor:
    """``M x`` per query for ``M``: (1|B) x m x k and ``x``: B x k -> B x m.

    A shared matrix (leading dim 1) is applied as one GEMM; broadcasting it through ``bmm`` would
    copy it B times (measured 3x slower for B = 160, n = 10, D = 512).
    """
    if M.shape[0] == 1:
        return x @ M[0].transpose(-1, -2)
    return (M @ x.unsqueeze(-1)).squeeze(-1)


def _finish(q: Tensor, c: Tensor, offset: Tensor, w: Tensor, out: torch.dtype, **extra) -> Projection:
    """Build the result from the centred query-side residual: p = c + offset, d = ||(q - c) - offset||."""
    point = (c + offset).expand_as(q).contiguous()  # own memory even for the shared class centre
    distance = torch.linalg.vector_norm((q - c) - offset, dim=-1)
    return Projection(point.to(out), w.to(out), distance.to(out), **extra)


# --------------------------------------------------------------------------------------------------
# class centre and affine hull (closed forms)


@torch.no_grad()
def class_center(q: Tensor, anchors: Tensor) -> Projection:
    """Project onto the class centre: ``p = mean_i a_i``, weights ``1/n``."""
    q, a3, out = _prepare(q, anchors)
    n = a3.shape[-2]
    w = torch.full((q.shape[0], n), 1.0 / n, dtype=q.dtype, device=q.device)
    c = a3.mean(dim=-2)
    return _finish(q, c, torch.zeros_like(c), w, out)


def _default_rtol(n: int, d: int, dtype: torch.dtype) -> float:
    # numpy/torch pinv convention: singular values below max(n, D) * eps * s_max count as zero.
    return max(n, d) * torch.finfo(dtype).eps


@torch.no_grad()
def affine_hull(q: Tensor, anchors: Tensor, *, rtol: float | None = None) -> Projection:
    """Project onto the affine hull ``{A^T w : sum(w) = 1}`` in closed form.

    With ``C = A - c`` the centred anchors (thin SVD ``C = U S V^T``), the projection is
    ``p = c + V_r V_r^T (q - c)`` where ``V_r`` keeps the singular directions with
    ``s > rtol * s_max`` (default ``rtol = max(n, D) * eps(float64)``, the pinv convention). This is the
    least-squares solution, so rank deficiency (``n > D + 1``, duplicated anchors) still gives the
    unique nearest point; the weights are the minimum-norm ones, ``w = 1/n + v - mean(v)`` with
    ``v = U_r S_r^{-1} V_r^T (q - c)``. The SVD of the centred anchors (not their Gram matrix) is
    used so that the conditioning is not squared.
    """
    q, a3, out = _prepare(q, anchors)
    n, d = a3.shape[-2:]
    c, C, r = _centre(q, a3)
    U, S, Vh = torch.linalg.svd(C, full_matrices=False)  # (1|B) x n x k, x k, x k x D
    tol = (_default_rtol(n, d, q.dtype) if rtol is None else rtol) * S[..., :1]
    keep = S > tol
    coef = _matvec(Vh, r) * keep  # B x k, coordinates in the kept directions
    offset = _matvec(Vh.transpose(-1, -2), coef)
    v = _matvec(U, coef / torch.where(keep, S, 1.0))  # B x n
    w = 1.0 / n + v - v.mean(dim=-1, keepdim=True)
    return _finish(q, c, offset, w, out)


# --------------------------------------------------------------------------------------------------
# convex hull (batched accelerated projected gradient on the n x n Gram matrix)


def project_simplex(v: Tensor) -> Tensor:
    """Exact Euclidean projection of each row of ``v`` onto the probability simplex (sort-based).

    ``w = max(v - theta, 0)`` with ``theta`` chosen so that ``sum(w) = 1``; the support size ``rho`` is
    the number of sorted entries with ``u_j > (sum_{i<=j} u_i - 1) / j`` (a prefix of the sort).
    """
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - 1.0
    k = torch.arange(1, v.shape[-1] + 1, device=v.device, dtype=v.dtype)
    rho = (u - css / k > 0).sum(dim=-1, keepdim=True)  # >= 1 because u_1 - (u_1 - 1) = 1
    theta = css.gather(-1, rho - 1) / rho.to(v.dtype)
    return (v - theta).clamp_min(0.0)


@dataclass(frozen=True)
class _HullQP:
    """``f(w) = 1/2 ||r - C^T w||^2 = 1/2 w^T G w - b^T w + const`` over the simplex, per query, with
    centred anchors ``C`` ((1|B) x n x D), centred queries ``r`` (B x D), ``G = C C^T``, ``b = C r``,
    step constant ``L = lambda_max(G)`` ((1|B) x 1) and stopping threshold ``limit = tol * s^2`` (B)."""

    C: Tensor
    r: Tensor
    G: Tensor
    b: Tensor
    L: Tensor
    limit: Tensor

    @classmethod
    def build(cls, C: Tensor, r: Tensor, tol: float) -> "_HullQP":
        G = C @ C.transpose(-1, -2)
        L = torch.linalg.eigvalsh(G)[..., -1:].clamp_min(torch.finfo(G.dtype).tiny)
        scale2 = torch.maximum(torch.diagonal(G, dim1=-2, dim2=-1).amax(-1), r.square().sum(-1))
        return cls(C, r, G, _matvec(C, r), L, tol * scale2)

    def take(self, rows: Tensor) -> "_HullQP":
        """The sub-problem of the given queries (shared anchors stay shared)."""
        per_query = self.C.shape[0] > 1
        pick = (lambda x: x[rows]) if per_query else (lambda x: x)
        return _HullQP(pick(self.C), self.r[rows], pick(self.G), self.b[rows], pick(self.L), self.limit[rows])

    def grad(self, w: Tensor) -> Tensor:
        return _matvec(self.G, w) - self.b

    def offset(self, w: Tensor) -> Tensor:
        """``p - c = C^T w`` (B x D)."""
        return _matvec(self.C.transpose(-1, -2), w)

    def suboptimality(self, w: Tensor) -> Tensor:
        """Frank-Wolfe duality gap ``<g, w> - min_i g_i`` (``g`` the gradient): by convexity a
        certified upper bound on ``f(w) - f*``.

        (``min(gap, f(w))`` would also be valid since ``f* >= 0``, and stops earlier for queries
        inside the hull, but it measured ~1e4x less accurate there for no saving in iterations.)
        """
        g = self.grad(w)
        return (g * w).sum(dim=-1) - g.amin(dim=-1)


def _fista_step(qp: _HullQP, w: Tensor, y: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One FISTA step from extrapolated point ``y``, with gradient-based adaptive restart
    (O'Donoghue & Candes 2015): momentum is reset when it points against the descent direction."""
    w_new = project_simplex(y - qp.grad(y) / qp.L)
    t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
    restart = ((y - w_new) * (w_new - w)).sum(dim=-1) > 0
    t_new = torch.where(restart, torch.ones_like(t_new), t_new)
    beta = torch.where(restart, torch.zeros_like(t), (t - 1.0) / t_new)
    y_new = w_new + beta.unsqueeze(-1) * (w_new - w)
    return w_new, y_new, t_new


def _face_minimiser(qp: _HullQP, w: Tensor) -> Tensor:
    """Exact minimiser of ``f`` on the affine hull of each query's support ``{i: w_i > 0}`` (may have
    negative weights; zero off the support).

    Equality-constrained least squares in Gram form: with ``s`` the uniform weights on the support
    and ``Pi = diag(mask) - mask s^T`` (rows: support anchors centred at their centroid),
    ``w = s + Pi^T v`` with ``v = pinv(Pi G Pi^T) Pi (b - G s)``. Eigenvalues below
    ``100 n eps * lambda_max`` count as zero (affinely dependent supports).
    """
    mask = (w > 0).to(w.dtype)
    s = mask / mask.sum(dim=-1, keepdim=True)
    Pi = torch.diag_embed(mask) - mask.unsqueeze(-1) * s.unsqueeze(-2)
    K = Pi @ qp.G @ Pi.transpose(-1, -2)
    k = _matvec(Pi, qp.b - _matvec(qp.G, s))
    lam, V = torch.linalg.eigh(K)
    keep = lam > 100 * w.shape[-1] * torch.finfo(w.dtype).eps * lam[..., -1:]
    v = _matvec(V, _matvec(V.transpose(-1, -2), k) * keep / torch.where(keep, lam, 1.0))
    return s + _matvec(Pi.transpose(-1, -2), v)


def _polish(qp: _HullQP, w: Tensor, drops: int) -> Tensor:
    """Active-set refinement of a feasible ``w``: exact minimiser on its face, dropping vertices.

    Projected gradient identifies the optimal face long before its iterates converge (linearly, and
    slowly on thin faces); the face minimiser is then the exact optimum. When the support still
    holds extra vertices, the face minimiser has negative weights: as in Wolfe's minimum-norm-point
    algorithm, move from ``w`` towards it until the first weight reaches 0, drop that vertex and
    re-solve (``f`` only decreases), at most ``drops`` times. Callers keep the result only where
    its :meth:`_HullQP.suboptimality` is certified.
    """
    wp = _face_minimiser(qp, w)
    for _ in range(drops):
        neg = wp < 0
        # Largest step keeping w + theta (wp - w) >= 0; w > 0 wherever wp < 0 (the support).
        ratio = torch.where(neg, w / (w - wp).clamp_min(torch.finfo(w.dtype).tiny), torch.inf)
        theta, first = ratio.min(dim=-1, keepdim=True)
        step = (w + theta.clamp(max=1.0) * (wp - w)).scatter(-1, first, 0.0).clamp_min(0.0)
        w = torch.where(neg.any(dim=-1, keepdim=True), step, w)
        wp = _face_minimiser(qp, w)
    wp = wp.clamp_min(0.0)
    return wp / wp.sum(dim=-1, keepdim=True)


@torch.no_grad()
def convex_hull(
    q: Tensor,
    anchors: Tensor,
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    check_every: int = DEFAULT_CHECK_EVERY,
    polish: bool = True,
) -> Projection:
    """Project onto the convex hull ``{A^T w : w >= 0, sum(w) = 1}``.

    Solves ``min_w 1/2 w^T G w - b^T w`` over the simplex, with the Gram matrix of the *centred*
    anchors ``G = C C^T`` and ``b = C (q - c)``, for all queries at once: FISTA (step ``1/L``,
    ``L = lambda_max(G)``, exact sort-based simplex projection, adaptive restart) from the class
    centre, and every ``check_every`` iterations (and before the first) an exact solve on each
    query's current support (:func:`_polish`). Centring leaves the problem unchanged on the simplex
    but removes the shared identity direction from ``G`` (for face-like features FISTA alone then
    needs ~30-40 iterations; with polishing 0-10). Polishing matters on thin faces, where FISTA
    alone needed up to 3000+ iterations (n = 50, D = 3) versus <= 230 with it.

    A query stops (its iterate is frozen and it leaves the batch) once its Frank-Wolfe gap, a
    certified bound on ``f(w) - f*``, is ``<= tol * s^2`` with
    ``s^2 = max(max_i ||a_i - c||^2, ||q - c||^2)``. Since ``f`` is 1-strongly convex in the point,
    ``||p - p*|| <= sqrt(2 tol) * s``: the default ``tol = 1e-14`` guarantees ``<= 1.5e-7 * s``
    (observed: ~1e-15 * s against an exact enumeration of faces). ``tol`` is floored at
    ``16 * eps`` of the work dtype, below which the gap is rounding noise. Queries still above it
    after ``max_iter`` iterations trigger a ``RuntimeWarning``; ``gap`` in the result holds the
    bound per query. ``polish=False`` gives plain FISTA.
    """
    q, a3, out = _prepare(q, anchors)
    _, C, r = _centre(q, a3)
    tol = max(tol, 16 * torch.finfo(q.dtype).eps)
    qp = _HullQP.build(C, r, tol)
    w, it = _solve(qp, max_iter, check_every, POLISH_DROPS if polish else -1)
    bound = qp.suboptimality(w)
    unconverged = bound > qp.limit
    if bool(unconverged.any()):
        worst = float((bound / qp.limit.clamp_min(torch.finfo(q.dtype).tiny)).max()) * tol
        warnings.warn(
            f"convex_hull: {int(unconverged.sum())} of {len(bound)} queries did not reach tol={tol:g} "
            f"in {max_iter} iterations (max gap / s^2 = {worst:.2e})",
            RuntimeWarning,
            stacklevel=2,
        )
    return _finish(q, a3.mean(dim=-2), qp.offset(w), w, out, gap=bound.to(out), iterations=it)


def _solve(qp: _HullQP, max_iter: int, check_every: int, drops: int) -> tuple[Tensor, int]:
    """FISTA from the class centre, polishing (unless ``drops < 0``) and checking every
    ``check_every`` steps. Converged queries are written out and dropped from the batch, so later
    iterations (and their polishing) only pay for the queries still running."""
    B, n = qp.b.shape
    w_out = torch.full((B, n), 1.0 / n, dtype=qp.b.dtype, device=qp.b.device)
    rows = torch.arange(B, device=w_out.device)
    w, y, t = w_out.clone(), w_out, torch.ones(B, dtype=w_out.dtype, device=w_out.device)
    it = 0
    while True:
        if drops >= 0:
            polished = _polish(qp, w, drops)
            w = torch.where((qp.suboptimality(polished) <= qp.limit).unsqueeze(-1), polished, w)
        active = qp.suboptimality(w) > qp.limit
        w_out[rows] = w
        if it >= max_iter or not bool(active.any()):  # one host sync per check, not per iteration
            return w_out, it
        keep = active.nonzero().squeeze(-1)
        qp, rows, w, y, t = qp.take(keep), rows[keep], w[keep], y[keep], t[keep]
        for _ in range(min(check_every, max_iter - it)):
            w, y, t = _fista_step(qp, w, y, t)
            it += 1


# --------------------------------------------------------------------------------------------------
# registry and loss

ProjectionFn = Callable[..., Projection]
Kind = Literal["center", "affine", "convex"]

PROJECTIONS: dict[str, ProjectionFn] = {
    "center": class_center,
    "affine": affine_hull,
    "convex": convex_hull,
}


def project(q: Tensor, anchors: Tensor, kind: Kind | str, **solver_kw) -> Projection:
    """Look up a projection by name ("center", "affine", "convex") and apply it."""
    try:
        fn = PROJECTIONS[kind]
    except KeyError:
        raise UnknownNameError("subspace projection", str(kind), PROJECTIONS) from None
    return fn(q, anchors, **solver_kw)


def subspace_loss(
    q: Tensor,
    anchors: Tensor,
    kind: Kind | str = "convex",
    *,
    reduction: Literal["none", "mean", "sum"] = "none",
    **solver_kw,
) -> Tensor:
    """Squared Euclidean distance ``||q - p*||^2`` from each query to its projection (not an MSE over D).

    The projection ``p*`` is computed without gradient and treated as a constant, so autograd gives
    ``d/dq = 2 (q - p*)`` -- exactly the gradient of the min-distance function ``min_{p in S} ||q - p||^2``
    by the envelope theorem (Danskin), with no backpropagation through solver iterations. Anchors
    get no gradient. ``reduction``: "none" -> ``B``, "mean" / "sum" over the batch. OPOM-style masks
    *maximise* this, so negate it for a minimiser.
    """
    p = project(q.detach(), anchors.detach(), kind, **solver_kw).point.to(q.dtype)
    loss = (q - p).square().sum(dim=-1)
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
