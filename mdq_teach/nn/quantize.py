"""Projections, routes and rounding on tensors: the swappable parts of the one training loop.

Every method of both papers (docs/design.md §1) keeps a *latent* tensor that a torch base
optimizer moves, and maps it to the primal value the network computes with by a projection
``P_beta``. Methods differ only in three parts, each defined here once:

* the **projection** (sign / nearest level, tanh and the shifted tanh of Eq. 21, softmax over the
  levels, the proximal quantizers of ProxConnect, or the identity of ProxQuant),
* the **route**: which gradient the base optimizer sees and what happens around its step (the
  straight-through estimator of Eq. 23, the chain rule through ``P``, BinaryConnect's gradient
  cancellation, the mirror-descent closed forms of Eq. 15 and Eq. 20, ProxQuant's proximal step),
* the **rounding** that makes the final network exactly quantized (nearest level, or argmax in the
  lifted u-space).

Everything works on one parameter's tensor at a time (the optimizer keeps one latent per
parameter in ``opt.state[p]``). In u-space the level axis comes *first*: a weight of shape S has a
latent of shape (d, *S), so the softmax over the levels reduces over contiguous planes instead of
a short last axis. For two levels the softmax is a sigmoid of the difference of the two planes,
and the projections write it that way.

Each projection has one literal reference form (:meth:`Projection.reference`: ``shifted_tanh``,
``softmax_levels``, ``nearest_level``, ...); the in-place and closed forms the optimizer runs
(``write``, ``primal_into``, ``vjp``, ``mirror_finish``) are overrides for speed, held to the
reference by ``tests/test_nn_fast_paths.py``, and the optimizer's steps, as it runs them, are held
to the numpy core (``mdq_teach.maps``, ``mdq_teach.prox``, ``mdq_teach.toy``) by
``tests/test_registry_matrix.py`` and ``tests/test_numpy_torch_agree.py``.

Levels are a sorted tuple of Python floats ``q_0 < q_1 < ... < q_{d-1}``; gaps between
neighbours have midpoints ``m_i`` and half-widths ``h_i``. Ties go to the upper level everywhere
(``sign(0) = +1``).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch

BISECTION_STEPS = 80  # halves a bracket of width < 2**7 down to below float64 resolution
PQ_REGS = ("l1", "l2")
PMF_JACOBIANS = ("paper", "released")


def as_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Validate quantization levels (at least two, finite, strictly increasing) as a tuple of
    floats. Unsorted levels are refused, not sorted: the core (``maps``) and the command line
    refuse them, and a silently reordered tuple would name other levels than the caller's."""
    try:
        values = tuple(float(v) for v in levels)
    except (TypeError, ValueError) as err:
        raise ValueError(f"levels must be a sequence of numbers, got {levels!r}") from err
    if len(values) < 2:
        raise ValueError(f"levels must hold at least 2 values, got {values!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"levels must be finite, got {values!r}")
    if len(set(values)) < len(values):
        raise ValueError(f"levels must be distinct, got {values!r}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"levels must be strictly increasing (sorted, no repeats), got {values!r}")
    return values


def _gaps(levels: tuple[float, ...]) -> list[tuple[float, float]]:
    """(midpoint m_i, half-width h_i) of each gap [q_i, q_{i+1}]."""
    return [((a + b) / 2, (b - a) / 2) for a, b in zip(levels, levels[1:], strict=False)]


_TABLES: dict = {}


def _table(levels: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    # Cached so that a step does not copy the levels to the accelerator again and again.
    key = (levels, like.dtype, like.device)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = torch.tensor(levels, dtype=like.dtype, device=like.device)
    return table


def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a cached 0-dim tensor: the broadcast first operand of a fused add(cmul)."""
    key = (value, like.dtype, like.device)
    scalar = _SCALARS.get(key)
    if scalar is None:
        scalar = _SCALARS[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
    return scalar


_SCALARS: dict = {}


# ----------------------------------------------------------------------------------------------
# rounding


def nearest_level(x: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """Nearest member of ``levels`` for each entry of ``x``; a midpoint goes to the upper level.

    For levels (-1, 1) this is ``sign`` with ``sign(0) = +1``.
    """
    if len(levels) == 2 and levels[0] == -levels[1]:
        return nearest_symmetric_into(torch.empty_like(x), x, levels)
    q = _table(levels, x)
    if len(levels) == 2:  # one comparison instead of a search
        return torch.where(x >= (levels[0] + levels[1]) / 2, q[1], q[0])
    midpoints = (q[1:] + q[:-1]) / 2
    # right=True puts x == midpoint into the upper bucket.
    return q[torch.searchsorted(midpoints, x.contiguous(), right=True)]


def nearest_symmetric_into(out: torch.Tensor, x: torch.Tensor, levels) -> torch.Tensor:
    """Nearest of two levels (-a, a) written into ``out``: a with the sign of x + 0.

    Adding +0 turns -0.0 into +0.0, so sign(0) = +1 for both zeros; copysign is exact and, on the
    CPU, several times faster than a select between two scalars.
    """
    torch.add(x, 0.0, out=out)
    return torch.copysign(_table(levels, out)[1].expand_as(out), out, out=out)


def argmax_level(u: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """Level of largest probability along the first (level) axis of ``u``; ties to the upper
    level."""
    q = _table(levels, u)
    d = len(levels)
    # argmax returns the first maximum; searching the reversed axis makes ties pick the upper level.
    return q[d - 1 - torch.argmax(u.flip(0), dim=0)]


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
    x: torch.Tensor, beta: float, levels: tuple[float, ...], out=None
) -> torch.Tensor:
    """d/dx of :func:`shifted_tanh`: ``sum_i h_i beta (1 - tanh^2(beta (x - m_i)))``.

    Written as ``1 / cosh^2``, which keeps full relative precision where tanh is close to +-1.
    """
    gaps = _gaps(levels)
    if len(gaps) == 1:  # one fresh tensor, the rest in place
        (m, h), = gaps
        return torch.mul(x - m if m else x, beta, out=out).cosh_().pow_(-2).mul_(h * beta)
    total = torch.zeros_like(x)
    for m, h in gaps:
        total = total + (h * beta) * torch.cosh(beta * (x - m)).pow(-2)
    return total if out is None else out.copy_(total)


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


def pq_prox(
    x: torch.Tensor, strength, levels: tuple[float, ...], reg: str, clamp: bool = True
) -> torch.Tensor:
    """ProxQuant's proximal map ``argmin_z 1/2 (z - x)^2 + strength R(z)``, then the clamp.

    R is the W-shaped regulariser toward the nearest level Q(z): ``R(z) = |z - Q(z)|`` ("l1") or
    ``R(z) = (z - Q(z))^2`` ("l2", no 1/2: the convention of ``mdq_teach.toy`` and chapter 7).
    Minimising over each level's basin separately, the nearest level to x wins, so the prox is a
    soft threshold toward Q(x) (l1) or the shrinkage ``(x + 2 strength Q(x)) / (1 + 2 strength)``
    (l2). ``clamp=True`` (the default, as ProxQuant's released code does after every proximal
    step) then clips the result to the hull [q_0, q_{d-1}]; ``clamp=False`` is the bare map.
    ``strength`` may be a tensor (a tensor learning rate times lambda).
    """
    return pq_prox_(x.clone(), strength, levels, reg, clamp)


def pq_prox_(
    x: torch.Tensor, strength, levels, reg: str, clamp: bool = True, scratch=None
) -> torch.Tensor:
    """:func:`pq_prox` written into ``x``.

    With r = x - Q(x): the soft threshold Q + sign(r) max(|r| - s, 0) is x - clip(r, -s, s), and
    the shrinkage (x + 2 s Q) / (1 + 2 s) is x - (2 s / (1 + 2 s)) r, so both are one update of x.
    """
    if reg not in PQ_REGS:
        raise ValueError(f"pq_reg must be one of {PQ_REGS}, got {reg!r}")
    if scratch is None or len(levels) != 2 or levels[0] != -levels[1]:
        r = x - nearest_level(x, levels)
    else:  # r = x - Q(x) in the scratch tensor
        r = torch.sub(x, nearest_symmetric_into(scratch, x, levels), out=scratch)
    if reg == "l1":
        x.sub_(r.clamp_(-strength, strength))
    elif isinstance(strength, torch.Tensor):
        x.sub_(r.mul_((2 * strength) / (1 + 2 * strength)))
    else:
        x.sub_(r, alpha=(2 * strength) / (1 + 2 * strength))
    return x.clamp_(levels[0], levels[-1]) if clamp else x


def bc_gate(g: torch.Tensor, x: torch.Tensor, levels: tuple[float, ...], out=None) -> torch.Tensor:
    """BinaryConnect's gradient cancellation: g where q_0 <= x <= q_{d-1}, else 0.

    One fused kernel: hardtanh's backward passes the gradient strictly between its bounds, so
    bounds one float outside the hull (in x's dtype) keep the hull's ends inside. Where x is NaN
    the result is unspecified (0 or g: the CPU kernel's vector and scalar paths differ); a NaN
    latent is beyond repair either way. A gradient of another dtype (a bfloat16 model) is first
    converted into ``out``.
    """
    if x.dtype not in _HULL_DTYPES or g.shape != x.shape:
        gate = bc_inside(x, levels).mul_(g)
        return gate if out is None else out.copy_(gate)
    if g.dtype != x.dtype:
        g = g.to(x.dtype) if out is None else out.copy_(g)
    below, above = _outside_hull(levels, x.dtype)
    if out is None:
        return torch.ops.aten.hardtanh_backward(g, x, below, above)
    return torch.ops.aten.hardtanh_backward.grad_input(g, x, below, above, grad_input=out)


_HULL_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _outside_hull(levels: tuple[float, ...], dtype: torch.dtype) -> tuple[float, float]:
    """The floats of ``dtype`` next below q_0 and next above q_{d-1}, as Python numbers.

    Computed with numpy, never from a tensor, so a step neither reads a tensor back (a host
    sync) nor breaks a torch.compile graph.
    """
    kind = _HULL_DTYPES[dtype]
    below = np.nextafter(kind(levels[0]), kind(-np.inf))
    above = np.nextafter(kind(levels[-1]), kind(np.inf))
    return float(below), float(above)


def bc_inside(x: torch.Tensor, levels: tuple[float, ...], out=None) -> torch.Tensor:
    """BinaryConnect's gradient gate: 1 where q_0 <= x <= q_{d-1} (the hull of the levels), else 0,
    in x's dtype.

    Written as clip(x) == x: exact (no rounding of x - m), and in the float dtype, because
    multiplying a gradient by a bool mask takes a slow type-promoting path on the CPU.
    """
    return torch.clamp(x, levels[0], levels[-1], out=out).eq_(x)


# ----------------------------------------------------------------------------------------------
# the softmax over the levels (level axis first), its two-level closed forms, and MD steps


def _column(levels: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    """The levels as a (d, 1, ..., 1) tensor that broadcasts against a (d, *S) latent."""
    return _table(levels, like).view(len(levels), *([1] * (like.dim() - 1)))


def softmax_levels(ut: torch.Tensor, beta) -> torch.Tensor:
    """u = softmax(beta u~) over the level axis (axis 0), Eq. 16."""
    return torch.softmax(beta * ut, dim=0)


def probabilities_to_weights(u: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """w = sum_k u_k q_k (Eq. 8), u with the level axis first."""
    return (u * _column(levels, u)).sum(0)


def two_level_tanh_into(out: torch.Tensor, x: torch.Tensor, beta, levels) -> torch.Tensor:
    """out <- m + h tanh(beta (x - m)) for two levels (m, h: midpoint and half-gap), in place.

    On the CPU in float32 it is evaluated as (m - h) + 2 h sigmoid(2 beta (x - m)): torch's CPU
    sigmoid costs about a third of its tanh, and this takes three passes over memory (four when
    m != 0). That result is within a few float32 units of roundoff of h (absolute, not relative:
    near m the sigmoid form cancels), far below any step the optimizer takes. float64 (the
    reference computations) and other devices, where tanh is not the bottleneck, use tanh.
    """
    (m, h), = _gaps(levels)
    if x.dtype != torch.float32 or x.device.type != "cpu":
        torch.sub(x, m, out=out) if m else out.copy_(x)
        out.mul_(beta).tanh_()
        return out.mul_(h).add_(m) if (m, h) != (0.0, 1.0) else out
    if m:
        torch.sub(x, m, out=out).mul_(2 * beta)
    else:
        torch.mul(x, 2 * beta, out=out)
    return _sigmoid_form_into(out, levels)


def _sigmoid_form_into(z: torch.Tensor, levels) -> torch.Tensor:
    """z <- (m - h) + 2 h sigmoid(z) = m + h tanh(z / 2), in place: the two-level weight from
    z = 2 beta (x - m) (tanh) or z = beta (u~_1 - u~_0) (softmax), in two passes."""
    ((m, h),) = _gaps(levels)
    z.sigmoid_()
    return torch.add(_scalar(m - h, z), z, alpha=2 * h, out=z)


_DUAL_CAPS: dict = {}


def _tanh_dual_cap(dtype: torch.dtype) -> float:
    """atanh(1 - eps) of ``dtype``: the largest |beta (x~ - m)| the clamped inverse returns."""
    if dtype not in _DUAL_CAPS:
        eps = torch.finfo(dtype).eps
        _DUAL_CAPS[dtype] = float(torch.tensor(1 - eps, dtype=dtype).atanh())
    return _DUAL_CAPS[dtype]


def lift_gradient(g: torch.Tensor, levels: tuple[float, ...], out=None) -> torch.Tensor:
    """d f / d u_k = g q_k for w = sum_k u_k q_k: shape (d, *g.shape) (written into ``out``)."""
    column = _column(levels, g.unsqueeze(0))
    if out is None:
        return g.unsqueeze(0) * column
    # One broadcast kernel for all d planes: on a loaded CPU every kernel launch costs a wait
    # for the slowest thread, so fewer, larger kernels beat the same bytes in d pieces.
    return torch.mul(g.unsqueeze(0), column, out=out)


def softmax_vjp(u: torch.Tensor, beta, gu: torch.Tensor) -> torch.Tensor:
    """Gradient through u = softmax(beta u~): beta u (gu - <u, gu>) (the paper's Jacobian)."""
    return beta * u * (gu - (u * gu).sum(0, keepdim=True))


def released_pmf_vjp(u: torch.Tensor, beta, gu: torch.Tensor) -> torch.Tensor:
    """PMF's released code: beta (I - u u^T) gu in place of the softmax Jacobian beta (diag u - u
    u^T) (its authors report it "works slightly better"); ``u`` is the softmax output."""
    return beta * (gu - u * (u * gu).sum(0, keepdim=True))


# ----------------------------------------------------------------------------------------------
# projection objects: one per projection, carrying their description for the method table


class Projection:
    """Map from a parameter's latent tensor to its primal one, with what the routes need.

    ``space`` is "w" (latent and primal have the weight's shape) or "u" (one extra *leading* axis
    of length d, the lifted probability space; the weight is ``w = sum_k u_k q_k``).
    """

    space = "w"
    name = ""
    description = ""
    levels: tuple[float, ...] = ()

    def bind(self, levels: tuple[float, ...], one_plane: bool = False) -> Projection:
        """A copy of this projection for ``levels``: the optimizer binds the projection a user
        passes to its levels. ``one_plane`` says the base optimizer commutes with negation and
        the route gives antisymmetric planes antisymmetric gradients (see :class:`Softmax`)."""
        bound = copy.copy(self)
        bound.levels = as_levels(levels)
        bound._setup(one_plane)
        return bound

    def _setup(self, one_plane: bool) -> None:
        """Derive what depends on the levels (after :meth:`bind`)."""

    def spec(self) -> dict:
        """The constructor's arguments, saved in the optimizer's ``state_dict``."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items())
        return f"{type(self).__name__}({args})"

    def __call__(self, latent: torch.Tensor, beta) -> torch.Tensor:
        """P_beta(latent): the reference form unless a subclass has a faster one."""
        return self.reference(latent, beta)

    def reference(self, latent: torch.Tensor, beta) -> torch.Tensor:
        """P_beta(latent) as the paper writes it: the form every fast path is checked against."""
        raise NotImplementedError

    def weights(self, primal: torch.Tensor) -> torch.Tensor:
        """Weight values the network uses, from the primal tensor."""
        return primal

    def write(self, out: torch.Tensor, latent: torch.Tensor, beta) -> None:
        """out <- the weights of P_beta(latent), in place (out may have a lower precision)."""
        out.copy_(self.weights(self(latent, beta)))

    def lift_init(self, w: torch.Tensor) -> torch.Tensor:
        """Initial latent from a float weight tensor: the weight itself in w-space."""
        return w.clone()

    def ste_grad(self, g: torch.Tensor, out=None) -> torch.Tensor:
        """Gradient with respect to the primal from g = df/dw (the STE hands it to the latent).

        ``out``, a scratch tensor shaped like the latent, receives it where it is given.
        """
        return g if out is None else out.copy_(g)

    def primal_into(self, out: torch.Tensor, latent: torch.Tensor, beta) -> None:
        """out <- P_beta(latent)."""
        out.copy_(self(latent, beta))

    def inverse_into(self, out: torch.Tensor, primal: torch.Tensor, beta) -> None:
        """out <- P_beta^{-1}(primal)."""
        out.copy_(self.inverse(primal, beta))

    def weights_into(self, out: torch.Tensor, primal: torch.Tensor) -> None:
        """out <- the weights of the primal tensor."""
        out.copy_(self.weights(primal))

    def vjp(self, latent: torch.Tensor, beta, g: torch.Tensor, out=None, weight=None):
        """Gradient with respect to the latent of a loss with gradient g at the weight."""
        raise ValueError(f"projection {self.name!r} has no Jacobian; use a straight-through route")

    def inverse(self, primal: torch.Tensor, beta) -> torch.Tensor:
        raise ValueError(f"projection {self.name!r} is not invertible")

    keeps_dual = False  # whether mirror_finish can carry the dual from step to step
    grad_is_g = False  # whether the tensor the base optimizer steps takes g = df/dw as it is

    def handle(self, latent: torch.Tensor) -> torch.Tensor:
        """The tensor the base optimizer steps: the latent (or a part that determines it)."""
        return latent

    def sync(self, latent: torch.Tensor) -> None:
        """Complete the latent from the part the base optimizer stepped (after the step)."""

    def rescale_dual(self, latent: torch.Tensor, beta, beta_next) -> None:
        """latent <- the same dual point at ``beta_next`` (P_beta(latent) unchanged)."""
        latent.mul_(beta / beta_next)

    def from_weights(self, w: torch.Tensor) -> torch.Tensor:
        """The primal tensor whose weights are ``w``."""
        return w.clone()

    def round(self, primal: torch.Tensor) -> torch.Tensor:
        return nearest_level(self.weights(primal), self.levels)


class Identity(Projection):
    name = "identity"
    description = "none (x is the weight)"

    def reference(self, latent, beta):
        return latent

    def write(self, out, latent, beta):
        out.copy_(latent)

    def inverse(self, primal, beta):
        return primal.clone()


class Hard(Projection):
    name = "hard"
    description = "nearest level Q(x~) (sign for two levels)"

    def reference(self, latent, beta):
        return nearest_level(latent, self.levels)

    def write(self, out, latent, beta):
        if len(self.levels) != 2:
            out.copy_(nearest_level(latent, self.levels))
            return
        if self.levels[0] == -self.levels[1] and out.dtype == latent.dtype:
            nearest_symmetric_into(out, latent, self.levels)
            return
        q = _table(self.levels, out)
        # One comparison and one select, written straight into the parameter.
        torch.where(latent >= (self.levels[0] + self.levels[1]) / 2, q[1], q[0], out=out)


class Tanh(Projection):
    name = "tanh"
    description = "tanh(beta x~) (Eq. 12); shifted tanh (Eq. 21) for 3+ levels"

    def _setup(self, one_plane):
        self.two = len(self.levels) == 2
        self.keeps_dual = self.two

    def reference(self, latent, beta):
        return shifted_tanh(latent, beta, self.levels)

    def write(self, out, latent, beta):
        if self.two and out.dtype == latent.dtype:
            two_level_tanh_into(out, latent, beta, self.levels)
        else:
            out.copy_(shifted_tanh(latent, beta, self.levels))

    def vjp(self, latent, beta, g, out=None, weight=None):
        if weight is not None and self.two and weight.dtype == latent.dtype and out is not None:
            # From the weight w = m + h tanh(beta (x~ - m)) the model holds: beta h (1 - y^2) g,
            # y = (w - m) / h, the paper's beta (1 - w^2), without a transcendental function:
            # tanh's own backward kernel forms g (1 - y^2) in one pass.
            (m, h), = _gaps(self.levels)
            y = weight if (m, h) == (0.0, 1.0) else torch.sub(weight, m, out=out).div_(h)
            torch.ops.aten.tanh_backward.grad_input(g, y, grad_input=out)
            return out.mul_(beta * h)
        return shifted_tanh_derivative(latent, beta, self.levels, out).mul_(g)

    def inverse(self, primal, beta):
        return shifted_tanh_inverse(primal, beta, self.levels)

    def primal_into(self, out, latent, beta):
        self.write(out, latent, beta)

    def inverse_into(self, out, primal, beta):
        if self.levels == (-1.0, 1.0):  # Eq. 13 in place, one epsilon inside [-1, 1]
            eps = torch.finfo(primal.dtype).eps
            torch.clamp(primal, -1 + eps, 1 - eps, out=out).atanh_().div_(beta)
        else:
            out.copy_(shifted_tanh_inverse(primal, beta, self.levels))

    def mirror_finish(self, state: dict, out: torch.Tensor, beta, beta_next) -> None:
        """Eq. 15 from a kept dual (two levels): out <- P_beta(latent), latent <- the dual of that
        primal at ``beta_next``.

        On entry the latent is x~ - eta d, the base optimizer's step from the dual x~ of the
        previous primal. With z = beta (x~ - m), the primal is m + h tanh(z) (Eq. 15:
        tanh(atanh(w) - beta eta d) for levels (-1, 1)) and its dual at the next beta is
        m + z / beta_next, so no atanh is taken, and the primal need not be stored: it is
        P_beta_next(latent). z is capped at atanh(1 - eps), the largest value
        :meth:`inverse_into` returns from a saturated weight, so a weight pushed onto a level comes
        back as soon as its gradient turns, exactly as when the dual is re-derived from the weight.
        """
        latent = state["latent"]
        (m, h), = _gaps(self.levels)
        cap = _tanh_dual_cap(latent.dtype) / beta
        torch.clamp(latent, m - cap, m + cap, out=latent)
        if beta_next != beta:
            self.rescale_dual(latent, beta, beta_next)
        # Written from the state as it is kept, so a resumed run writes the same weights.
        self.write(out, latent, beta_next)

    def rescale_dual(self, latent, beta, beta_next):
        (m, _), = _gaps(self.levels)
        if m:
            latent.sub_(m).mul_(beta / beta_next).add_(m)
        else:
            latent.mul_(beta / beta_next)


class Linear(Projection):
    name = "linear"
    description = "piecewise linear, slope beta on each gap, clipped to it"

    def reference(self, latent, beta):
        return piecewise_linear(latent, beta, self.levels)


class BinaryRelax(Projection):
    name = "binaryrelax"
    description = "(theta + beta Q(theta)) / (1 + beta)"

    def reference(self, latent, beta):
        return binary_relax(latent, beta, self.levels)


class Softmax(Projection):
    """softmax(beta u~) over the d levels (level axis first); the weight is w = sum_k u_k q_k.

    Two symmetric levels (-a, a) keep the two planes antisymmetric, u~_0 = -u~_1: softmax ignores
    a common shift, so this is a choice of representative (the initial latent is (-a w, a w),
    the dual of a primal (-v, v) with v = log(u_1 / u_0) / (2 beta)). Every step then gives plane
    0 the negated gradient of plane 1, and a base optimizer that commutes with negation (all of
    torch's elementwise ones) moves it by the negated step. With ``one_plane=True`` (the
    optimizer sets it for such bases) only plane 1 is handed to the base optimizer and plane 0 is
    written as its negation afterwards: the same iterates for half the optimizer's work, and the
    base optimizer's moments have the weight's shape.
    """

    space = "u"
    name = "softmax"
    keeps_dual = True
    description = (
        "u = softmax(beta u~) over the d levels, w = u q (two levels: sigmoid of u~_1 - u~_0)"
    )

    def _setup(self, one_plane):
        levels = self.levels
        self.two = len(levels) == 2
        self.antisymmetric = self.two and levels[0] == -levels[1]
        self.one_plane = bool(one_plane) and self.antisymmetric

    @property
    def grad_is_g(self) -> bool:
        return self.one_plane and self.levels[1] == 1.0

    def handle(self, latent):
        return latent[1] if self.one_plane else latent

    def sync(self, latent):
        if self.one_plane:
            torch.neg(latent[1], out=latent[0])

    def __call__(self, latent, beta):
        out = torch.empty_like(latent)
        self.primal_into(out, latent, beta)
        return out

    def reference(self, latent, beta):
        return softmax_levels(latent, beta)

    def weights(self, primal):
        return probabilities_to_weights(primal, self.levels)

    def write(self, out, latent, beta):
        if self.one_plane:
            # u~_1 - u~_0 = 2 u~_1, so w = a tanh(beta u~_1): the two-level tanh of plane 1 (plane
            # 0 may not be written yet: the optimizer syncs it after the step).
            if out.dtype == latent.dtype:
                two_level_tanh_into(out, latent[1], beta, self.levels)
            else:
                out.copy_(two_level_tanh_into(torch.empty_like(latent[1]), latent[1], beta,
                                              self.levels))  # fmt: skip
        elif self.two and out.dtype == latent.dtype:
            # w = m + h tanh(z / 2) = (m - h) + 2 h sigmoid(z), z = beta (u~_1 - u~_0): a sigmoid
            # costs a fraction of a tanh on the CPU, and the affine map is one fused pass.
            _sigmoid_form_into(torch.sub(latent[1], latent[0], out=out).mul_(beta), self.levels)
        else:
            out.copy_(self.weights(self(latent, beta)))

    def lift_init(self, w):
        # u~_k = q_k w - q_k^2 / 2 = -(w - q_k)^2 / 2 + const: the mass of softmax(beta u~) is a
        # Gaussian bump centred on the float weight. For levels (-1, 1) it gives u~_1 - u~_0 =
        # 2 w, so the initial weight is tanh(beta w), as with the tanh methods. Two symmetric
        # levels drop the common -a^2 / 2, which leaves the planes antisymmetric.
        q = _column(self.levels, w.unsqueeze(0))
        if self.antisymmetric:
            return w.unsqueeze(0) * q
        return w.unsqueeze(0) * q - q * q / 2

    def ste_grad(self, g, out=None):
        if self.one_plane:
            return torch.mul(g, self.levels[1], out=out) if out is not None else g * self.levels[1]
        return lift_gradient(g, self.levels, out)

    def vjp(self, latent, beta, g, out=None, weight=None):
        if self.two and weight is not None and out is not None and (
            weight.dtype == latent.dtype
        ):
            # u_0 u_1 = (1 - y^2) / 4 with y = (w - m) / h = u_1 - u_0, read from the weight the
            # model holds: s = beta (q_1 - q_0) g u_0 u_1 = (beta h / 2) g (1 - y^2), the
            # gradient of plane 1 (plane 0 gets -s). tanh's backward kernel forms g (1 - y^2).
            (m, h), = _gaps(self.levels)
            plane = out if self.one_plane else out[1]
            y = weight if (m, h) == (0.0, 1.0) else torch.sub(weight, m, out=plane).div_(h)
            torch.ops.aten.tanh_backward.grad_input(g, y, grad_input=plane)
            plane.mul_(beta * h / 2)
            if not self.one_plane:
                torch.neg(plane, out=out[0])
            return out
        full = softmax_vjp(self(latent, beta), beta, lift_gradient(g, self.levels))
        if self.one_plane:
            return full[1] if out is None else out.copy_(full[1])
        return full

    def released_vjp(self, latent, beta, g):
        """PMF's released code's beta (I - u u^T) in place of the softmax Jacobian."""
        return released_pmf_vjp(self(latent, beta), beta, lift_gradient(g, self.levels))

    def primal_into(self, out, latent, beta):
        if not self.two:
            out.copy_(softmax_levels(latent, beta))
            return
        z = torch.sub(latent[1], latent[0], out=out[1]).mul_(beta)
        torch.neg(z, out=out[0]).sigmoid_()
        z.sigmoid_()

    def inverse_into(self, out, primal, beta):
        tiny = torch.finfo(primal.dtype).tiny
        if not self.two:
            torch.clamp_min(primal, tiny, out=out).log_().div_(beta)
            return
        # Softmax ignores a common shift, so the representative (0, log(u_1 / u_0) / beta), or
        # (-v, v) with half of it for symmetric levels, is as good an inverse as log(u) / beta
        # and costs one logarithm per weight instead of two.
        torch.clamp_min(primal[0], tiny, out=out[0])
        torch.clamp_min(primal[1], tiny, out=out[1]).div_(out[0]).log_()
        if self.antisymmetric:
            out[1].div_(2 * beta)
            torch.neg(out[1], out=out[0])
        else:
            out[1].div_(beta)
            out[0].zero_()

    def weights_into(self, out, primal):
        if self.two and out.dtype == primal.dtype:
            if self.levels == (-1.0, 1.0):  # w = u_1 - u_0: one pass
                torch.sub(primal[1], primal[0], out=out)
            else:  # w = q_0 + (q_1 - q_0) u_1
                torch.mul(primal[1], self.levels[1] - self.levels[0], out=out)
                out.add_(self.levels[0])
        else:
            out.copy_(self.weights(primal))

    def mirror_finish(self, state: dict, out: torch.Tensor, beta, beta_next) -> None:
        """Eq. 20 from a kept dual: out <- the weights of P_beta(latent), and latent <- the dual
        of that primal at ``beta_next`` in the representative :meth:`inverse_into` gives.

        On entry ``state["latent"]`` is x~ - eta d, the base optimizer's step from the dual
        x~ = P_beta^{-1}(x) of the previous primal, so the primal is softmax(log u - beta eta d)
        (Eq. 20). Instead of taking logarithms of the new primal at the next step, the dual is
        renormalised and rescaled here: log(u) = log_softmax(beta x~) (d levels; for two levels
        the log-odds z = beta (x~_1 - x~_0)), divided by ``beta_next``. The log-probabilities
        (and the log-odds) are capped at the log of the smallest normal number, as the logarithm
        of the clamped probability in :meth:`inverse_into` caps them, so a saturated probability
        can grow again as soon as its gradient turns. The primal is not stored: it is
        P_beta_next(latent), recomputed where it is needed (rounding, inspection).
        """
        latent = state["latent"]
        bound = -math.log(torch.finfo(latent.dtype).tiny)
        if not self.two:
            logu = torch.log_softmax(latent * beta, dim=0)
            torch.clamp_min(logu, -bound, out=latent).div_(beta_next)
        elif self.one_plane:
            # z = 2 beta x~_1: cap x~_1 and rescale it; plane 0 follows (sync).
            plane = latent[1]
            torch.clamp(plane, -bound / (2 * beta), bound / (2 * beta), out=plane)
            if beta_next != beta:
                plane.mul_(beta / beta_next)
        else:
            z = torch.sub(latent[1], latent[0]).mul_(beta).clamp_(-bound, bound)
            if self.antisymmetric:
                torch.div(z, 2 * beta_next, out=latent[1])
                torch.neg(latent[1], out=latent[0])
            else:
                torch.div(z, beta_next, out=latent[1])
                latent[0].zero_()
        # Written from the state as it is kept, so a resumed run writes the same weights.
        self.write(out, latent, beta_next)

    def inverse(self, primal, beta):
        # Eq. 18 with the normalising constant dropped (softmax ignores it); clamping keeps an
        # underflowed probability recoverable instead of turning it into log(0) = -inf.
        if self.antisymmetric:  # the antisymmetric representative (see the class docstring)
            out = torch.empty_like(primal)
            self.inverse_into(out, primal, beta)
            return out
        tiny = torch.finfo(primal.dtype).tiny
        return torch.log(primal.clamp_min(tiny)) / beta

    def from_weights(self, w):
        if not self.two:
            raise ValueError(
                f"weights do not determine the probabilities over {len(self.levels)} levels; "
                "use reset_latents_from_params(inverse=False)"
            )
        u1 = ((w - self.levels[0]) / (self.levels[1] - self.levels[0])).clamp(0, 1)
        return torch.stack((1 - u1, u1))

    def round(self, primal):
        return argmax_level(primal, self.levels)


PROJECTIONS: dict[str, type[Projection]] = {
    cls.name: cls for cls in (Identity, Hard, Tanh, Linear, BinaryRelax, Softmax)
}


# ----------------------------------------------------------------------------------------------
# routes: what the base optimizer sees, and what happens around its step


class StepContext:
    """What every route may read about one step of one parameter group."""

    def __init__(self, t, beta, beta_next, lr, buffers, compiling=False):
        self.buffers = buffers  # the latents' gradient tensors, by latent
        self.compiling = compiling
        self.weight = None  # the parameter being stepped (holds P_beta(latent))
        self.t = t  # the index of this step (0, 1, ...)
        self.beta = beta  # the value the model's weights were projected with
        self.beta_next = beta_next  # the value the new weights are projected with
        self.lr = lr


class Route:
    """One parameter's update around the base optimizer's step.

    ``grad`` returns the gradient the base optimizer sees for the latent (it may first reset the
    latent: mirror routes re-derive it from the stored primal); ``finish`` runs after the base
    step and writes the new weights into the parameter; ``write`` writes the soft weights of the
    current state (used at construction, after loading, and to restore after rounding).
    """

    name = ""
    description = ""
    stores_primal = False
    # Whether the gradient of an antisymmetric latent is antisymmetric, so that the optimizer may
    # step one plane of it (see ``Softmax``).
    odd = True

    def spec(self) -> dict:
        """The constructor's arguments, saved in the optimizer's ``state_dict``."""
        return {}

    def check(self, proj: Projection) -> None:
        """Refuse a projection this route cannot run with (ValueError)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items())
        return f"{type(self).__name__}({args})"

    def stores_primal_for(self, proj: Projection) -> bool:
        """Whether ``state["primal"]`` is kept for parameters with this projection."""
        return self.stores_primal

    @staticmethod
    def buffer(proj: Projection, state: dict, ctx: StepContext):
        """The latent's gradient tensor, allocated once and kept between steps."""
        return ctx.buffers[state["latent"]]

    def grad(self, proj: Projection, state: dict, g: torch.Tensor, ctx: StepContext):
        takes_g = proj.space == "w" or proj.grad_is_g
        if takes_g and g.dtype == state["latent"].dtype and not ctx.compiling:
            return g  # handed on as it is: no copy
        return proj.ste_grad(g, self.buffer(proj, state, ctx))

    def finish(self, proj: Projection, state: dict, p: torch.Tensor, ctx: StepContext) -> None:
        proj.write(p, state["latent"], ctx.beta_next)

    def write(self, proj: Projection, state: dict, p: torch.Tensor, beta) -> None:
        proj.write(p, state["latent"], beta)

    def primal(self, proj: Projection, state: dict, beta) -> torch.Tensor:
        return proj(state["latent"], beta)

    def settle(self, proj: Projection, state: dict, beta) -> None:
        """Bring a freshly initialised or reset state into the form :meth:`grad` expects."""

    def skip(self, proj: Projection, state: dict, ctx: StepContext) -> None:
        """A step that leaves this parameter (and its weight) where it is."""


class StraightThrough(Route):
    name = "ste"
    description = (
        "store x~; x~ -= eta d, d from g unchanged (STE, Eq. 23; g q in u-space); x = P(x~)"
    )


class ChainRule(Route):
    """The gradient through the projection. ``jacobian="paper"`` back-propagates through it (PMF
    as published); ``jacobian="released"`` (softmax only) takes PMF's released code's
    beta (I - u u^T) in place of the softmax Jacobian."""

    name = "chain"
    description = "store x~; d from the gradient through P (Jacobian); x = P(x~)"

    def __init__(self, jacobian: str = "paper"):
        if jacobian not in PMF_JACOBIANS:
            raise ValueError(
                f"jacobian / pmf_jacobian must be one of {PMF_JACOBIANS}, got {jacobian!r}"
            )
        self.jacobian = jacobian
        # The released Jacobian gives the two planes gradients that are not negatives.
        self.odd = jacobian == "paper"

    def spec(self):
        return {"jacobian": self.jacobian}

    def check(self, proj):
        if self.jacobian == "released" and not hasattr(proj, "released_vjp"):
            raise ValueError(
                f"jacobian='released' is PMF's softmax Jacobian; projection {proj.name!r} has none"
            )

    def grad(self, proj, state, g, ctx):
        if self.jacobian == "released":
            return proj.released_vjp(state["latent"], ctx.beta, g)
        # ctx.weight holds P_beta(latent): every write into it uses the beta of the next step.
        return proj.vjp(state["latent"], ctx.beta, g, self.buffer(proj, state, ctx), ctx.weight)


class Cancel(Route):
    """BinaryConnect's route: the straight-through gradient, zeroed where the latent left the
    hull of the levels (``clip=False``: not zeroed, the plain straight-through estimator)."""

    name = "cancel"
    description = "store x~; x~ -= eta d, g zeroed where x~ is outside [q_min, q_max]"

    def __init__(self, clip: bool = True):
        self.clip = _flag("clip / bc_clip_grad", clip)

    def spec(self):
        return {"clip": self.clip}

    def grad(self, proj, state, g, ctx):
        if not self.clip:
            return super().grad(proj, state, g, ctx)
        return bc_gate(g, state["latent"], proj.levels, self.buffer(proj, state, ctx))


class Mirror(Route):
    """Mirror descent in closed form: the primal is the state, the dual is re-derived each step.

    With x~ = P_beta^{-1}(x) and x~ -= eta d, the new primal P_beta(x~) is Eq. 15 for tanh
    (``tanh(atanh(w) - beta eta d)``) and Eq. 20 for softmax (exponentiated gradient; for two
    levels the sigmoid of the difference of the two planes). Unlike the "-s" variants, a change
    of beta leaves the primal where it is. MD-softmax runs :class:`KeptDualMirror`, the same
    iterates without a logarithm per step.
    """

    name = "mirror"
    description = "store x only; x = P(P^-1(x) - eta d): Eq. 15 (tanh), Eq. 20 (softmax)"
    stores_primal = True

    def grad(self, proj, state, g, ctx):
        proj.inverse_into(state["latent"], state["primal"], ctx.beta)
        return super().grad(proj, state, g, ctx)

    def finish(self, proj, state, p, ctx):
        primal = state["primal"]
        proj.sync(state["latent"])  # one stepped plane: the primal reads both
        proj.primal_into(primal, state["latent"], ctx.beta)
        proj.weights_into(p, primal)

    def write(self, proj, state, p, beta):
        proj.weights_into(p, state["primal"])

    def primal(self, proj, state, beta):
        return state["primal"]


class KeptDualMirror(Mirror):
    """Mirror descent with the dual kept between steps (MD-softmax, Eq. 20; MD-tanh, Eq. 15).

    The same iterates as :class:`Mirror` up to float rounding, without a logarithm (softmax) or
    an atanh (tanh) per step: the latent holds x~ = P_beta^{-1}(x) for the current beta (for
    softmax in the representative :meth:`Softmax.inverse_into` gives: log(u) / beta,
    (0, log(u_1 / u_0) / beta) for two levels, (-v, v) with v = log(u_1 / u_0) / (2 beta) for two
    symmetric levels), the base optimizer moves it, and the projection's ``mirror_finish`` writes
    the new weights and turns the latent into the dual of the new primal at the next step's
    beta. So weight decay acts on the same dual
    point as in :class:`Mirror`. When beta changes the latent is rescaled to the new beta, also
    for a parameter the step skips (its primal and weight do not move; the latent is the same
    dual point at the new beta). A projection without a kept-dual form (the shifted tanh of 3+
    levels, ``keeps_dual = False``) re-derives the dual from the primal each step, as
    :class:`Mirror` does.
    """

    name = "mirror-dual"
    description = (
        "store the dual x~ = P^-1(x), capped; x~ -= eta d; x = P(x~); when beta changes x~ is "
        "rescaled so that x stays: Eq. 15 (tanh), Eq. 20 (softmax); 3+ tanh levels store x and "
        "re-derive x~"
    )

    def stores_primal_for(self, proj):
        # A kept dual determines the primal, P_beta(latent); the shifted tanh re-derives.
        return not proj.keeps_dual

    def grad(self, proj, state, g, ctx):
        if proj.keeps_dual:
            return Route.grad(self, proj, state, g, ctx)
        return super().grad(proj, state, g, ctx)

    def write(self, proj, state, p, beta):
        if proj.keeps_dual:
            Route.write(self, proj, state, p, beta)
        else:
            super().write(proj, state, p, beta)

    def primal(self, proj, state, beta):
        if proj.keeps_dual:
            return Route.primal(self, proj, state, beta)
        return super().primal(proj, state, beta)

    def finish(self, proj, state, p, ctx):
        if proj.keeps_dual:
            proj.mirror_finish(state, p, ctx.beta, ctx.beta_next)
        else:
            super().finish(proj, state, p, ctx)

    def settle(self, proj, state, beta):
        if proj.keeps_dual:  # the dual of the primal the latent names, in its representative
            latent = state["latent"]
            proj.inverse_into(latent, proj(latent, beta), beta)

    def skip(self, proj, state, ctx):
        if proj.keeps_dual and ctx.beta_next != ctx.beta:
            proj.rescale_dual(state["latent"], ctx.beta, ctx.beta_next)


class ProxStep(Route):
    """ProxQuant: a base step on x, then the proximal map of ``lr * lam * t`` times the
    regulariser ``reg`` at the t-th step (t = 1, 2, ...); ``clamp`` clips to the hull after it
    (the released code) or not (the paper's bare map). See :func:`pq_prox`."""

    name = "prox"
    description = (
        "store x; x = prox_{eta lambda_t R}(x - eta d), lambda_t linear in t, then clamped to "
        "[q_min, q_max] (pq_clamp)"
    )

    def __init__(self, reg: str = "l1", lam: float = 1e-4, clamp: bool = True):
        if reg not in PQ_REGS:
            raise ValueError(f"reg / pq_reg must be one of {PQ_REGS}, got {reg!r}")
        ok = isinstance(lam, numbers.Real) and not isinstance(lam, bool)
        if not (ok and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam / pq_lambda must be in [0, inf), got {lam!r}")
        self.reg, self.lam = reg, float(lam)
        self.clamp = _flag("clamp / pq_clamp", clamp)

    def spec(self):
        return {"reg": self.reg, "lam": self.lam, "clamp": self.clamp}

    def finish(self, proj, state, p, ctx):
        latent = state["latent"]
        # The gradient buffer is free once the base optimizer has stepped: scratch for Q(x).
        scratch = self.buffer(proj, state, ctx)
        strength = ctx.lr * (self.lam * (ctx.t + 1))
        pq_prox_(latent, strength, proj.levels, self.reg, self.clamp, scratch)
        p.copy_(latent)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


ROUTES: dict[str, type[Route]] = {
    cls.name: cls for cls in (StraightThrough, ChainRule, Cancel, Mirror, KeptDualMirror, ProxStep)
}
