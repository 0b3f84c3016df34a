"""Projections, routes and rounding on tensors: the swappable parts of the one training loop.

Every method of both papers (docs/design.md §1) keeps an auxiliary tensor ``aux`` that a torch
base optimizer moves, and maps it to the primal value the network computes with by a projection
``P_beta``. Methods differ only in three parts, each defined here once:

* the **projection** (sign / nearest level, tanh and the shifted tanh of Eq. 21, softmax over the
  levels, the proximal quantizers of ProxConnect, or the identity of ProxQuant),
* the **route**: which gradient the base optimizer sees and what happens around its step (the
  straight-through estimator of Eq. 23, the chain rule through ``P``, BinaryConnect's gradient
  cancellation, the mirror-descent closed forms of Eq. 15 and Eq. 20, ProxQuant's proximal step),
* the **rounding** that makes the final network exactly quantized (nearest level, or argmax in the
  lifted u-space).

All functions work on flat tensors (one tensor holds every weight of a parameter group), so each
step is a handful of vectorised kernels whatever the number of layers. Levels are a sorted tuple of
Python floats ``q_0 < q_1 < ... < q_{d-1}``; gaps between neighbours have midpoints ``m_i`` and
half-widths ``h_i``. Ties go to the upper level everywhere (``sign(0) = +1``, docs/design.md §5).

The numpy twins of the ProxConnect quantizers live in ``mdq_teach.prox`` and use the same formulas.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

BISECTION_STEPS = 80  # halves a bracket of width < 2**7 down to below float64 resolution


def as_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Validate quantization levels; return them sorted as a tuple of floats."""
    try:
        values = tuple(float(v) for v in levels)
    except (TypeError, ValueError) as err:
        raise ValueError(f"levels must be a sequence of numbers, got {levels!r}") from err
    if len(values) < 2:
        raise ValueError(f"levels must hold at least 2 values, got {values!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"levels must be finite, got {values!r}")
    ordered = tuple(sorted(values))
    if any(b <= a for a, b in zip(ordered, ordered[1:], strict=False)):
        raise ValueError(f"levels must be distinct, got {values!r}")
    return ordered


def _gaps(levels: tuple[float, ...]) -> list[tuple[float, float]]:
    """(midpoint m_i, half-width h_i) of each gap [q_i, q_{i+1}]."""
    return [((a + b) / 2, (b - a) / 2) for a, b in zip(levels, levels[1:], strict=False)]


def _table(levels: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return _cached_table(levels, like.dtype, like.device)


@functools.lru_cache(maxsize=64)
def _cached_table(levels: tuple[float, ...], dtype: torch.dtype, device) -> torch.Tensor:
    # Cached so that a step does not copy the levels to the accelerator again and again.
    return torch.tensor(levels, dtype=dtype, device=device)


# ----------------------------------------------------------------------------------------------
# rounding


def nearest_level(x: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """Nearest member of ``levels`` for each entry of ``x``; a midpoint goes to the upper level.

    For levels (-1, 1) this is ``sign`` with ``sign(0) = +1``.
    """
    q = _table(levels, x)
    if len(levels) == 2:  # one comparison instead of a search
        return torch.where(x >= (levels[0] + levels[1]) / 2, q[1], q[0])
    midpoints = (q[1:] + q[:-1]) / 2
    # right=True puts x == midpoint into the upper bucket.
    return q[torch.searchsorted(midpoints, x.contiguous(), right=True)]


def argmax_level(u: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """Level of largest probability along the last axis of ``u`` (ties to the upper level)."""
    q = _table(levels, u)
    d = len(levels)
    # argmax returns the first maximum; searching the reversed axis makes ties pick the upper level.
    return q[d - 1 - torch.argmax(u.flip(-1), dim=-1)]


# ----------------------------------------------------------------------------------------------
# projections (aux -> primal) as plain functions


def shifted_tanh(x: torch.Tensor, beta: float, levels: tuple[float, ...]) -> torch.Tensor:
    """Shifted tanh (Eq. 21 generalised): ``c + sum_i h_i tanh(beta (x - m_i))``.

    ``c = (q_0 + q_{d-1}) / 2`` so that the map sends R onto the open interval (q_0, q_{d-1}) and
    approaches the staircase of the levels as beta grows. For levels (-1, 1) it is exactly
    ``tanh(beta x)`` (Eq. 12); for (-1, 0, 1) it is Eq. 21.
    """
    offset = (levels[0] + levels[-1]) / 2
    out = None
    for m, h in _gaps(levels):
        # Skipping the no-op shift and scale keeps levels (-1, 1) at two passes over memory.
        # In place on the fresh product: one allocation per level gap instead of two.
        term = (beta * (x - m) if m != 0 else beta * x).tanh_()
        term = term if h == 1 else h * term
        out = term if out is None else out + term
    return out if offset == 0 else out + offset


def shifted_tanh_derivative(
    x: torch.Tensor, beta: float, levels: tuple[float, ...]
) -> torch.Tensor:
    """d/dx of :func:`shifted_tanh`: ``sum_i h_i beta (1 - tanh^2(beta (x - m_i)))``.

    Written as ``1 / cosh^2``, which keeps full relative precision where tanh is close to +-1.
    """
    out = torch.zeros_like(x)
    for m, h in _gaps(levels):
        out = out + (h * beta) * torch.cosh(beta * (x - m)).pow(-2)
    return out


def shifted_tanh_inverse(w: torch.Tensor, beta: float, levels: tuple[float, ...]) -> torch.Tensor:
    """Inverse of :func:`shifted_tanh` on the open hull (Eq. 13 for two levels).

    ``w`` is first clamped one machine epsilon (relative to the span) inside the hull, because
    float rounding puts ``P(x)`` exactly on a level once beta * |x| is large. Two levels use the
    closed form ``m + atanh((w - m) / h) / beta``; more levels solve ``P(x) = w`` by vectorised
    bisection (P is strictly increasing).
    """
    eps = torch.finfo(w.dtype).eps
    gaps = _gaps(levels)
    if len(gaps) == 1:
        m, h = gaps[0]
        z = ((w - m) / h).clamp(-1 + eps, 1 - eps)
        return torch.atanh(z) / beta + m
    span = levels[-1] - levels[0]
    target = w.clamp(levels[0] + eps * span, levels[-1] - eps * span)
    # tanh(40) == 1 in float64, so P(m_0 - 40/beta) and P(m_last + 40/beta) bracket every target.
    lo = torch.full_like(w, gaps[0][0] - 40.0 / beta)
    hi = torch.full_like(w, gaps[-1][0] + 40.0 / beta)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        below = shifted_tanh(mid, beta, levels) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return (lo + hi) / 2


def piecewise_linear(theta: torch.Tensor, beta: float, levels: tuple[float, ...]) -> torch.Tensor:
    """ProxConnect's annealed linear quantizer.

    On the gap [q_i, q_{i+1}] containing theta (a level q_i, i >= 1, belongs to the gap on its
    right) with midpoint m: ``clip(m + beta (theta - m), q_i, q_{i+1})``; outside the hull, the
    nearest end of the hull. beta = 1 is the identity on the hull, beta -> inf the staircase.
    """
    q = _table(levels, theta)
    d = len(levels)
    j = (torch.searchsorted(q, theta.contiguous(), right=True) - 1).clamp(0, d - 2)
    lo, hi = q[j], q[j + 1]
    mid = (lo + hi) / 2
    out = torch.minimum(torch.maximum(mid + beta * (theta - mid), lo), hi)
    return torch.where(theta < levels[0], q[0], torch.where(theta > levels[-1], q[-1], out))


def binary_relax(theta: torch.Tensor, beta: float, levels: tuple[float, ...]) -> torch.Tensor:
    """BinaryRelax's quantizer ``(theta + beta Q(theta)) / (1 + beta)``, Q the nearest level."""
    return (theta + beta * nearest_level(theta, levels)) / (1 + beta)


def pq_prox(x: torch.Tensor, strength: float, levels: tuple[float, ...], reg: str) -> torch.Tensor:
    """ProxQuant's proximal map ``argmin_z 1/2 (z - x)^2 + strength R(z)`` (exact, elementwise).

    R is the W-shaped regulariser toward the nearest level Q(z): ``R(z) = |z - Q(z)|`` ("l1") or
    ``R(z) = (z - Q(z))^2 / 2`` ("l2"). Minimising over each level's basin separately, the nearest
    level to x wins (its objective is an increasing function of |x - q|), so the prox is a soft
    threshold toward Q(x) (l1) or the shrinkage ``(x + strength Q(x)) / (1 + strength)`` (l2).
    """
    q = nearest_level(x, levels)
    r = x - q
    if reg == "l1":
        return q + torch.sign(r) * (r.abs() - strength).clamp_min(0)
    if reg == "l2":
        return q + r / (1 + strength)
    raise ValueError(f"pq_reg must be one of ('l1', 'l2'), got {reg!r}")


# ----------------------------------------------------------------------------------------------
# projection objects: one per projection, carrying their description for the method table


class Projection:
    """Map from the auxiliary tensor to the primal one, with what the routes need from it.

    ``space`` is "w" (aux and primal have the weight's shape) or "u" (one extra trailing axis of
    length d, the lifted probability space; the weight is ``w = u q``).
    """

    space = "w"
    name = ""
    description = ""

    def __init__(self, levels: tuple[float, ...]):
        self.levels = levels

    def __call__(self, aux: torch.Tensor, beta: float) -> torch.Tensor:
        raise NotImplementedError

    def vjp(self, aux: torch.Tensor, beta: float, g: torch.Tensor) -> torch.Tensor:
        """Gradient with respect to aux of a loss with gradient g at the primal (chain rule)."""
        raise ValueError(f"projection {self.name!r} has no Jacobian; use a straight-through route")

    def inverse(self, primal: torch.Tensor, beta: float) -> torch.Tensor:
        raise ValueError(f"projection {self.name!r} is not invertible")

    def weights(self, primal: torch.Tensor) -> torch.Tensor:
        """Weight values the network uses, from the primal tensor."""
        return primal

    def lift_grad(self, g: torch.Tensor) -> torch.Tensor:
        """Gradient with respect to the primal from the gradient g with respect to the weights."""
        return g

    def lift_init(self, w: torch.Tensor) -> torch.Tensor:
        """Initial auxiliary tensor from a float weight tensor: the weight itself in w-space."""
        return w.clone()

    def round(self, primal: torch.Tensor) -> torch.Tensor:
        return nearest_level(self.weights(primal), self.levels)


class Identity(Projection):
    name = "identity"
    description = "none (x is the weight)"

    def __call__(self, aux, beta):
        return aux


class Hard(Projection):
    name = "hard"
    description = "nearest level Q(x~) (sign for two levels)"

    def __call__(self, aux, beta):
        return nearest_level(aux, self.levels)


class Tanh(Projection):
    name = "tanh"
    description = "tanh(beta x~) (Eq. 12); shifted tanh (Eq. 21) for 3+ levels"

    def __call__(self, aux, beta):
        return shifted_tanh(aux, beta, self.levels)

    def vjp(self, aux, beta, g):
        return shifted_tanh_derivative(aux, beta, self.levels) * g

    def inverse(self, primal, beta):
        return shifted_tanh_inverse(primal, beta, self.levels)


class Linear(Projection):
    name = "linear"
    description = "piecewise linear, slope beta on each gap, clipped to it"

    def __call__(self, aux, beta):
        return piecewise_linear(aux, beta, self.levels)


class BinaryRelax(Projection):
    name = "binaryrelax"
    description = "(theta + beta Q(theta)) / (1 + beta)"

    def __call__(self, aux, beta):
        return binary_relax(aux, beta, self.levels)


class Softmax(Projection):
    """softmax(beta u~) over the d levels; the weight is w = sum_lambda u_lambda q_lambda."""

    space = "u"
    name = "softmax"
    description = "u = softmax(beta u~) over the d levels, w = u q"

    def __call__(self, aux, beta):
        return torch.softmax(beta * aux, dim=-1)

    def vjp(self, aux, beta, g):
        u = self(aux, beta)
        return beta * u * (g - (u * g).sum(-1, keepdim=True))

    def inverse(self, primal, beta):
        # Eq. 18 with the normalising constant dropped (softmax ignores it); clamping keeps an
        # underflowed probability recoverable instead of turning it into log(0) = -inf.
        tiny = torch.finfo(primal.dtype).tiny
        return torch.log(primal.clamp_min(tiny)) / beta

    def weights(self, primal):
        return primal @ _table(self.levels, primal)

    def lift_grad(self, g):
        # d f / d u_lambda = g * q_lambda, since w = sum_lambda u_lambda q_lambda.
        return g.unsqueeze(-1) * _table(self.levels, g)

    def lift_init(self, w):
        # u~_lambda = q_lambda w - q_lambda^2 / 2 = -(w - q_lambda)^2 / 2 + const: the mass of
        # softmax(beta u~) is a Gaussian bump centred on the float weight. For levels (-1, 1) it
        # gives u~_1 - u~_0 = 2 w, so the initial weight is tanh(beta w), as with the tanh methods.
        q = _table(self.levels, w)
        return w.unsqueeze(-1) * q - q * q / 2

    def round(self, primal):
        return argmax_level(primal, self.levels)


PROJECTIONS: dict[str, type[Projection]] = {
    cls.name: cls for cls in (Identity, Hard, Tanh, Linear, BinaryRelax, Softmax)
}


# ----------------------------------------------------------------------------------------------
# routes: what the base optimizer sees, and what happens around its step


class GroupState:
    """Everything a route touches for one parameter group (flat tensors, hyperparameters)."""

    def __init__(self, projection: Projection, aux: torch.Tensor, primal: torch.Tensor | None):
        self.projection = projection
        self.aux = aux  # the tensor the base optimizer moves
        self.primal = primal  # stored only by mirror routes; otherwise P(aux) on demand
        self.beta = 1.0
        self.lr = 0.0
        self.reg_strength = 0.0
        self.reg = "l1"


class Route:
    name = ""
    description = ""
    stores_primal = False

    def begin(self, s: GroupState) -> None:
        """Before the gradient is formed (mirror routes re-derive aux from the primal here)."""

    def aux_grad(self, s: GroupState, g: torch.Tensor) -> torch.Tensor:
        """Gradient handed to the base optimizer, from g = df/d(primal)."""
        return g

    def end(self, s: GroupState) -> None:
        """After the base optimizer moved aux."""

    def primal(self, s: GroupState, beta: float) -> torch.Tensor:
        """Primal tensor after the step, at the annealing value of the next step."""
        return s.projection(s.aux, beta)


class StraightThrough(Route):
    name = "ste"
    description = (
        "store x~; x~ -= eta d, d from g unchanged (STE, Eq. 23; g q in u-space); x = P(x~)"
    )


class ChainRule(Route):
    name = "chain"
    description = "store x~; d from the gradient through P (Jacobian); x = P(x~)"

    def aux_grad(self, s, g):
        return s.projection.vjp(s.aux, s.beta, g)


class Cancel(Route):
    name = "cancel"
    description = "store x~; x~ -= eta d, g zeroed where x~ is outside the hull of the levels"

    def aux_grad(self, s, g):
        levels = s.projection.levels
        inside = (s.aux >= levels[0]) & (s.aux <= levels[-1])
        return g * inside


class Mirror(Route):
    """Mirror descent in closed form: the primal is the state, the dual is re-derived each step.

    With x~ = P_beta^{-1}(x) and x~ -= eta d, the new primal P_beta(x~) is Eq. 15 for tanh
    (``tanh(atanh(w) - beta eta d)``) and Eq. 20 for softmax (exponentiated gradient), computed in
    this atanh / log form for stability. Unlike the "-s" variants, a change of beta leaves the
    primal where it is.
    """

    name = "mirror"
    description = "store x only; x = P(P^-1(x) - eta d): Eq. 15 (tanh), Eq. 20 (softmax)"
    stores_primal = True

    def begin(self, s):
        s.aux.copy_(s.projection.inverse(s.primal, s.beta))

    def end(self, s):
        s.primal.copy_(s.projection(s.aux, s.beta))

    def primal(self, s, beta):
        return s.primal


class ProxStep(Route):
    name = "prox"
    description = "store x; x = prox_{eta lambda_t R}(x - eta d), lambda_t linear in t"

    def end(self, s):
        s.aux.copy_(pq_prox(s.aux, s.lr * s.reg_strength, s.projection.levels, s.reg))


ROUTES: dict[str, type[Route]] = {
    cls.name: cls for cls in (StraightThrough, ChainRule, Cancel, Mirror, ProxStep)
}
