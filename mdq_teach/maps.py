"""Projections P_beta and the mirror maps Theorem 1 derives from them.

Each class bundles one projection with everything mirror descent (MD) needs from it:

========================  ==================================  ===============================
method                    meaning                             paper
========================  ==================================  ===============================
``project(x_tilde, b)``   P_beta: auxiliary (dual) -> primal  Eq. 12, 16, 21
``inverse(x, b)``         P_beta^{-1} = grad Phi_beta         Eq. 13, 18
``potential(x, b)``       the mirror map Phi_beta             Eq. 14, 19
``bregman(p, q, b)``      D_{Phi_beta}(p, q)                  Eq. 3
``md_step(x, g, eta, b)`` one MD step, stable closed form     Eq. 5, 15, 20, 23
``round(x)``              nearest quantization level          final rounding
========================  ==================================  ===============================

All methods take numpy arrays (or scalars), broadcast like numpy, compute in float64 and return
the caller's precision: float32 in gives float32 out. Interval maps act elementwise; ``Softmax``
acts on probability vectors along the last axis.

The MD step is x_{k+1} = P_beta(P_beta^{-1}(x_k) - eta g_k) (Eq. 4 and 5 with grad Phi_beta =
P_beta^{-1}). It is evaluated in atanh / logit / log-sum-exp form, never through the ratios of
exponentials printed in Eq. 15 and 20: those overflow in float32 (``Tanh.md_step_literal`` keeps
the printed formula for the book to show that). A point exactly on the boundary, where
P_beta^{-1} is infinite, is treated as the nearest interior number of its precision, so it can
move back inside; in exact arithmetic it would stay on the boundary for ever.

Rounding sends a point to its nearest level; a tie goes to the upper level, so sign(0) = +1.

One source of truth: each formula is written once, as a module-level kernel on validated float64
arrays (``round_to_levels``, ``tanh_md_step``, ``shifted_tanh``, ``log_cosh``,
``relative_entropy_terms``). The classes below, ``toy`` (the trajectories of every method),
``prox`` (the quantizers) and the widgets call these kernels; ``_validate.check_levels`` is the
one level check and ``theory.md_bound`` the one Theorem 2 bound. Results come back in the caller's
precision: float16 in gives float16 out, float32 gives float32, everything else float64.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from mdq_teach import _validate as v

__all__ = [
    "MirrorMap",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "ShiftedTanh",
    "Euclidean",
    "MAPS",
    "get_map",
    "round_to_levels",
    "tanh_md_step",
    "shifted_tanh",
    "log_cosh",
    "relative_entropy_terms",
]


# --------------------------------------------------------------------------------------------------
# The formulas, once. These kernels take float64 arrays that are already validated (no checks, so
# they are cheap enough for the toy trajectories and the widgets); ``toy``, ``prox`` and the map
# classes below all call them rather than writing the formula again.


def round_to_levels(x, levels):
    """The nearest of the sorted ``levels`` to each entry of ``x``; a tie goes to the upper level,
    so for the levels (-1, 1) this is sign with sign(0) = +1."""
    q = np.asarray(levels, dtype=float)
    return q[np.searchsorted(0.5 * (q[1:] + q[:-1]), x, side="right")]


# The largest float64 below 1: where rounding has put a point on +-1, atanh would be infinite.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def tanh_md_step(x, dual_move):
    """MD-tanh (Eq. 15) in stable form: tanh(atanh(x) - dual_move) with dual_move = beta eta g.

    Eq. 15 multiplies (1 + x) / (1 - x) = exp(2 atanh x) by exp(-2 beta eta g); taking atanh of
    both sides gives this form, which cannot overflow. A point on +-1 is first moved to the
    nearest float64 inside (its atanh is finite), so it can leave the boundary again.
    """
    x = np.clip(x, -_BELOW_ONE, _BELOW_ONE)
    return np.tanh(np.arctanh(x) - dual_move)


def shifted_tanh(s, beta, levels):
    """The shifted-tanh staircase (Eq. 21) for sorted ``levels`` q_0 < ... < q_{d-1}::

        P_beta(s) = q_0 + sum_i h_i / 2 * (1 + tanh(beta (s - c_i))),

    with h_i = q_{i+1} - q_i and c_i = (q_i + q_{i+1}) / 2. It is evaluated around the gap
    [q_j, q_{j+1}] that holds s: P = c_j + h_j/2 tanh(a_j) - sum_{i<j} h_i expit(-2 a_i)
    + sum_{i>j} h_i expit(2 a_i), a_i = beta (s - c_i) (since (1 + tanh a) / 2 = expit(2 a)). Every
    term but the first is then small, so no digits are lost to cancellation, two levels (-1, 1)
    give tanh(beta s) bit for bit, and a saturated step returns its level exactly.
    """
    q = np.asarray(levels, dtype=float)
    h = np.diff(q)
    c = 0.5 * (q[1:] + q[:-1])
    s = np.asarray(s, dtype=float)
    j = np.searchsorted(q[1:-1], s, side="right")
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.tanh(beta * (s - c[j]))
        out = np.where(t >= 1, q[j + 1], np.where(t <= -1, q[j], c[j] + 0.5 * h[j] * t))
        # One contiguous pass per step (d - 1 is small): -sign(a_i) h_i expit(-2 |a_i|) is
        # -h_i expit(-2 a_i) below the gap of s and h_i expit(2 a_i) above it.
        for i in range(h.size if h.size > 1 else 0):
            a = beta * (s - c[i])
            tail = np.copysign(h[i] * special.expit(-2 * np.abs(a)), -a)
            out = out + np.where(j == i, 0.0, tail)
    return out


def tanh_projection(s, beta):
    """The two-level projection tanh(beta s) onto (-1, 1) (Eq. 12)."""
    return np.tanh(beta * s)


def exponentiated_gradient(u, dual_move, floor):
    """Exponentiated gradient (Eq. 20) in log-sum-exp form along the last axis:
    softmax(log max(u, floor) - dual_move), dual_move = beta eta g.

    ``floor`` decides what a zero entry does: 0 keeps it at zero for ever (exact EG, as
    ``simplex.eg_step`` runs it on the matrix game), the smallest normal number lets it grow again
    (``Softmax.md_step``, where a level must not be lost for good to one underflow).
    """
    with np.errstate(divide="ignore"):
        logits = np.log(np.maximum(u, floor)) - dual_move
    return special.softmax(logits, axis=-1)


def shrink_to_nearest_level(v, beta, levels):
    """(v + beta q) / (1 + beta), q the level nearest to v: the proximal map of
    (beta / 2) dist(x, levels)^2. It is BinaryRelax's projection (``prox.BinaryRelaxQuantizer``)
    and, with beta = 2 tau, ProxQuant's L2 prox of tau (x - q)^2 (``toy.prox_w`` with form "l2")."""
    q = round_to_levels(v, levels)
    return (v + beta * q) / (1.0 + beta)


def log_cosh(a):
    """log cosh(a) without overflow: |a| + log1p(exp(-2|a|)) - log 2."""
    a = np.abs(a)
    return a + np.log1p(np.exp(-2 * a)) - np.log(2.0)


def relative_entropy_terms(a, b):
    """a log(a / b) - a + b, entry by entry (>= 0; 0 where a = 0 <= b; +inf where b = 0 < a).

    ``scipy.special.kl_div`` forms a / b first, which overflows to inf when b is tiny (b = 1e-310,
    a = 0.5) although the true value is about 355. Where that happens the same quantity is taken
    as xlogy(a, a) - xlogy(a, b) - a + b, which stays finite.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = special.kl_div(a, b)
        bad = np.isinf(out) & (b > 0)
        if np.any(bad):
            alt = special.xlogy(a, a) - special.xlogy(a, b) - a + b
            out = np.where(bad, alt, out)
    return out


class MirrorMap:
    """Common interface; subclasses fill in the float64 kernels ``_project`` ... ``_md_step``."""

    name: str = "mirror map"
    levels: np.ndarray
    domain: tuple[float, float] | str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(levels={tuple(float(q) for q in self.levels)})"


class IntervalMap(MirrorMap):
    """A projection from R onto the open interval between the smallest and largest level."""

    def __init__(self, levels) -> None:
        self.levels = v.check_levels(levels)
        self.lo = float(self.levels[0])
        self.hi = float(self.levels[-1])
        self.domain = (self.lo, self.hi)
        self._midpoints = 0.5 * (self.levels[1:] + self.levels[:-1])

    # -- public interface: validation, dtype handling, boundary policy --------------------------

    def project(self, x_tilde, beta):
        """P_beta(x_tilde): any finite real number to a point of the domain."""
        dtype = v.float_dtype(x_tilde)
        s = v.as_finite("x_tilde", x_tilde)
        beta = v.check_beta(beta)
        with np.errstate(over="ignore"):  # beta x~ = +-inf projects onto the boundary, its limit
            out = self._project(s, beta)
        return v.finish(np.clip(out, self.lo, self.hi), dtype)

    def inverse(self, x, beta):
        """P_beta^{-1}(x) = Phi_beta'(x); -inf / +inf exactly on the boundary (Theorem 1)."""
        dtype = v.float_dtype(x)
        xs = self._check_x("x", x, dtype)
        beta = v.check_beta(beta)
        out = self._inverse(v.interior(xs, self.lo, self.hi, np.dtype(np.float64)), beta)
        out = np.where(xs <= self.lo, -np.inf, np.where(xs >= self.hi, np.inf, out))
        return v.finish(out, dtype)

    def potential(self, x, beta):
        """Phi_beta(x) = integral of P_beta^{-1} (Theorem 1), finite on the closed domain."""
        dtype = v.float_dtype(x)
        xs = self._check_x("x", x, dtype)
        return v.finish(self._potential(xs, v.check_beta(beta)), dtype)

    def bregman(self, p, q, beta):
        """D_{Phi_beta}(p, q) (Eq. 3): >= 0, zero only at p = q, +inf when q alone is on the
        boundary."""
        dtype = v.float_dtype(p, q)
        ps = self._check_x("p", p, dtype)
        qs = self._check_x("q", q, dtype)
        v.check_broadcast(p=ps, q=qs)
        return v.finish(self._bregman(ps, qs, v.check_beta(beta)), dtype)

    def md_step(self, x, g, eta, beta):
        """One MD step (Eq. 5): x_new = P_beta(P_beta^{-1}(x) - eta g), inside the closed domain."""
        dtype = v.float_dtype(x, g)
        xs, gs, eta, beta = self._step_args(x, g, eta, beta, dtype)
        xi = v.interior(xs, self.lo, self.hi, dtype)
        return v.finish(np.clip(self._md_step(xi, gs, eta, beta), self.lo, self.hi), dtype)

    def round(self, x):
        """Nearest level of ``self.levels`` (ties to the upper level, so sign(0) = +1)."""
        dtype = v.float_dtype(x)
        xs = v.as_finite("x", x)
        return v.finish(round_to_levels(xs, self.levels), dtype)

    # -- helpers ------------------------------------------------------------------------------

    def _check_x(self, name, x, dtype):
        return v.check_interval(name, x, self.lo, self.hi, dtype)

    def _step_args(self, x, g, eta, beta, dtype):
        xs = self._check_x("x", x, dtype)
        gs = v.as_finite("g", g)
        eta = v.check_eta(eta)
        beta = v.check_beta(beta)
        _check_step_shape("x", xs, gs, eta)
        with np.errstate(over="ignore"):
            dual_move = beta * eta * gs
        if not np.all(np.isfinite(dual_move)):
            raise ValueError("beta * eta * g overflows float64; reduce eta or g")
        return xs, gs, eta, beta

    # Default step: the stored-auxiliary composition of Eq. 23, exact for any valid projection.
    def _md_step(self, x, g, eta, beta):
        return self._project(self._inverse(x, beta) - eta * g, beta)


class Tanh(IntervalMap):
    """Binary w-space map: P_beta(x~) = tanh(beta x~) onto [-1, 1] (Eq. 12-15).

    P_beta^{-1}(w) = atanh(w) / beta (Eq. 13) and
    Phi_beta(w) = [(1 + w) log(1 + w) + (1 - w) log(1 - w)] / (2 beta) (Eq. 14).
    """

    name = "tanh"

    def __init__(self) -> None:
        super().__init__((-1.0, 1.0))

    def __repr__(self) -> str:
        return "Tanh()"

    def _project(self, s, beta):
        return tanh_projection(s, beta)

    def _inverse(self, x, beta):
        return np.arctanh(x) / beta

    def _potential(self, x, beta):
        return (special.xlogy(1 + x, 1 + x) + special.xlogy(1 - x, 1 - x)) / (2 * beta)

    def _bregman(self, p, q, beta):
        # Each term a log(a / b) - a + b is >= 0, so no rounding below zero.
        kl = relative_entropy_terms
        return (kl(1 + p, 1 + q) + kl(1 - p, 1 - q)) / (2 * beta)

    def _md_step(self, x, g, eta, beta):
        return tanh_md_step(x, beta * eta * g)

    def md_step_literal(self, x, g, eta, beta):
        """Eq. 15 exactly as printed, evaluated in the caller's precision. Deliberately unstable.

        ``((1 + x) / (1 - x) * exp(-2 beta eta g) - 1) / ((1 + x) / (1 - x) * exp(-2 beta eta g)
        + 1)`` divides by zero at x = 1 and overflows once exp(-2 beta eta g) or the ratio passes
        the largest float (about 3.4e38 in float32), giving inf / inf = NaN. It may return NaN or
        a wrong value; use ``md_step`` for computation. The inputs are validated like
        ``md_step``'s.
        """
        dtype = v.float_dtype(x, g)
        self._step_args(x, g, eta, beta, dtype)
        xd = np.asarray(x, dtype=dtype)
        gd = np.asarray(g, dtype=dtype)
        two_beta_eta = dtype.type(2) * dtype.type(beta) * np.asarray(eta, dtype=dtype)
        with np.errstate(all="ignore"):
            ratio = (1 + xd) / (1 - xd) * np.exp(-two_beta_eta * gd)
            return ((ratio - 1) / (ratio + 1))[()]


class Sigmoid(IntervalMap):
    """w-space map onto [0, 1]: P_beta(x~) = sigmoid(beta x~) (the sigmoid case of Sec. 3).

    P_beta^{-1}(w) = logit(w) / beta and Phi_beta(w) = [w log w + (1 - w) log(1 - w)] / beta.
    """

    name = "sigmoid"

    def __init__(self) -> None:
        super().__init__((0.0, 1.0))

    def __repr__(self) -> str:
        return "Sigmoid()"

    def _project(self, s, beta):
        return special.expit(beta * s)

    def _inverse(self, x, beta):
        return special.logit(x) / beta

    def _potential(self, x, beta):
        return (special.xlogy(x, x) + special.xlogy(1 - x, 1 - x)) / beta

    def _bregman(self, p, q, beta):
        kl = relative_entropy_terms
        return (kl(p, q) + kl(1 - p, 1 - q)) / beta

    def _md_step(self, x, g, eta, beta):
        # w / (1 - w) is multiplied by exp(-beta eta g): the sigmoid analogue of Eq. 15.
        return special.expit(special.logit(x) - beta * eta * g)


class ShiftedTanh(IntervalMap):
    """Multi-level w-space map: a staircase of shifted tanh steps (Eq. 21, any sorted levels).

    With levels q_0 < ... < q_{d-1}, steps Delta_i = q_i - q_{i-1} and midpoints
    c_i = (q_{i-1} + q_i) / 2::

        P_beta(x~) = q_0 + sum_i Delta_i / 2 * (1 + tanh(beta (x~ - c_i))).

    For levels (-1, 0, 1) this is Eq. 21, 0.5 [tanh(beta(x~ + 0.5)) + tanh(beta(x~ - 0.5))]; for
    (-1, 1) it is ``Tanh``. For three levels P_beta^{-1} is the root of a quadratic
    (``_three_level_root``, book chapter 3); for more it is found in float64 by Halley's
    method safeguarded by bisection, bracketed by the single-step maps through the first and
    last midpoint. The mirror map comes
    from the Legendre identity Phi(x) = x x~ - Phi*(x~) with Phi* = integral of P (a sum of
    log cosh terms).

    For large beta the float64 value of P is flat on its plateaus, so ``inverse`` and
    ``md_step`` on the primal point alone lose the auxiliary position there; store x~ and use
    ``project`` (Eq. 23), as the paper recommends for this map.
    """

    name = "shifted_tanh"

    def __init__(self, levels=(-1.0, 0.0, 1.0)) -> None:
        super().__init__(levels)
        self._steps = np.diff(self.levels)
        self._span = self.hi - self.lo

    def _project(self, s, beta):
        return _blockwise(lambda t: shifted_tanh(t, beta, self.levels), s)

    def _derivatives(self, s, beta):
        # P(s) = q_0 + sum_i h_i E_i, P' = sum_i 2 beta h_i E_i (1 - E_i) and
        # P'' = sum_i 4 beta^2 h_i E_i (1 - E_i) (1 - 2 E_i), with E_i = expit(2 beta (s - c_i)):
        # one exponential per step for all three. P is accurate to a few units of roundoff in
        # absolute terms, all the iteration needs (``shifted_tanh`` is accurate near 0 as well).
        value = np.full_like(s, self.lo)
        slope = np.zeros_like(s)
        curve = np.zeros_like(s)
        for c, h in zip(self._midpoints, self._steps, strict=True):
            e = s - c
            e *= 2 * beta
            special.expit(e, out=e)
            value += h * e
            w = e * (1 - e)
            w *= 2 * beta * h
            slope += w
            w *= 1 - 2 * e
            w *= 2 * beta
            curve += w
        return value, slope, curve

    def _inverse(self, x, beta):
        return _blockwise(lambda t: self._inverse_block(t, beta), x)

    def _inverse_block(self, x, beta):
        if self._steps.size == 2:
            return self._three_level_root(x, beta)
        # Newton's method on P(s) = x, safeguarded by bisection, run only on the entries that have
        # not converged yet (so the cost is a few passes over the array, not 200).
        # Bracket: P lies between the single steps centred at the first and last midpoint, so the
        # root lies between their inverses (widened by 1/beta against rounding in arctanh).
        r = np.clip(2 * (x - self.lo) / self._span - 1, -_BELOW_ONE, _BELOW_ONE)
        a = np.arctanh(r) / beta
        left = self._midpoints[0] + a - 1 / beta
        right = self._midpoints[-1] + a + 1 / beta
        if beta * self._steps.min() >= 2:
            # Steps that barely overlap: invert the one step of the gap that holds x.
            gaps = np.searchsorted(self.levels[1:-1], x, side="right")
            j = np.clip(gaps, 0, self._steps.size - 1)
            c, h = self._midpoints[j], self._steps[j]
            s = c + np.arctanh(np.clip(2 * (x - c) / h, -_BELOW_ONE, _BELOW_ONE)) / beta
        else:
            # Overlapping steps: P is close to one tanh across the whole span.
            s = 0.5 * (self._midpoints[0] + self._midpoints[-1]) + a
        s = np.clip(s, left, right)
        eps = np.finfo(np.float64).eps
        value_tol = 2 * self._steps.size * eps * max(1.0, abs(self.lo), abs(self.hi))
        step_tol = eps ** (1 / 3) / beta
        largest = max(1.0, float(np.abs(left).max(initial=0)), float(np.abs(right).max(initial=0)))
        stuck_tol = 4 * eps * largest
        # Working arrays hold only the unconverged entries (idx says where they belong); they are
        # compacted only on passes where some entries finish.
        out = s
        idx = np.arange(x.size)
        st, xt, lt, rt = s.copy(), x, left, right
        for _ in range(200):
            if idx.size == 0:
                break
            value, slope, curve = self._derivatives(st, beta)
            residual = value - xt
            below = residual < 0
            lt = np.where(below, st, lt)
            rt = np.where(below, rt, st)
            # Halley's step (cubic convergence): s - 2 f f' / (2 f'^2 - f f'').
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                halley = st - 2 * residual * slope / (2 * slope * slope - residual * curve)
            inside = (halley >= lt) & (halley <= rt)
            s_new = np.where(inside, halley, 0.5 * (lt + rt))
            # Stop where P(s) matches x to roundoff (near the boundary P is so flat that the
            # neighbouring floats of s straddle x), where s has stopped moving, or after a Halley
            # step shorter than eps^(1/3) / beta: the derivatives of a tanh step scale with powers
            # of beta, so the step just taken has left an error below beta^2 step^3 <= eps / beta.
            matched = np.abs(residual) <= value_tol
            moved = np.abs(s_new - st)
            done = matched | (moved <= stuck_tol) | (inside & (moved <= step_tol))
            st = np.where(matched, st, s_new)
            if done.any():
                out[idx[done]] = st[done]
                keep = ~done
                idx, st, xt, lt, rt = idx[keep], st[keep], xt[keep], lt[keep], rt[keep]
        return out

    def _three_level_root(self, x, beta):
        """P^{-1}(x) for three levels q0 < q1 < q2 in closed form, no iteration.

        With X = x - q0, U = q2 - x, kappa = exp(-2 beta (c2 - c1)) and z1 = exp(2 beta (s - c1))
        = z2 / kappa, P(s) = x reads kappa U z1^2 + b z1 - X = 0, or U z2^2 + b z2 - kappa X = 0,
        with b = (q1 - x) + kappa (h2 - X); each has one positive root. Below the middle level
        (b > 0) z1 = 2 X / (b + D), above it z2 = (D - b) / (2 U), D = sqrt(b^2 + 4 kappa X U):
        nothing nearly equal is subtracted, and s is measured from the midpoint of the step x sits
        on, so it keeps its digits on the outer plateaus (``tests/test_maps.py`` holds the result
        to a few units of roundoff of P against a 60-digit evaluation, beta from 1e-3 to 1e300).
        D is formed as hypot(b, 2 r sqrt(X U)) with r = sqrt(kappa), so neither b^2 nor kappa
        underflows before r does; and s - c = log(z) / 2 / beta never forms 2 beta.
        """
        q0, q1, q2 = self.levels
        (c1, c2), (h1, h2) = self._midpoints, self._steps
        with np.errstate(over="ignore", under="ignore"):
            r = np.exp(-beta * (c2 - c1))
            kappa = r * r
        lower, upper = x - q0, q2 - x
        b = (q1 - x) + kappa * (h2 - lower)
        root = np.hypot(b, 2 * r * np.sqrt(lower * upper))
        below = b > 0
        num = np.where(below, 2 * lower, root - b)
        den = np.where(below, b + root, 2 * upper)
        centre = np.where(below, c1, c2)
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            s = centre + np.log(num / den) / 2 / beta
            bad = ~np.isfinite(s)
            if bad.any():
                # The ratio left the float range (a subnormal X or U): take it as a difference of
                # logs. Only x = q1 with r underflowed is left (b = 0 and D = 0), where P is flat
                # to the last digit; its large-beta root, from h2 expit(a2) = h1 expit(-a1), is
                # used there.
                s[bad] = centre[bad] + (np.log(num[bad]) - np.log(den[bad])) / 2 / beta
                flat = ~np.isfinite(s)
                s[flat] = 0.5 * (c1 + c2) + np.log(h1 / h2) / 4 / beta
        return s

    def _potential(self, x, beta):
        return _blockwise(lambda t: self._potential_block(t, beta), x)

    def _bregman(self, p, q, beta):
        return _blockwise(lambda a, b: self._bregman_block(a, b, beta), p, q)

    def _potential_block(self, x, beta):
        s = self._inverse_block(v.interior(x, self.lo, self.hi, np.dtype(np.float64)), beta)
        tail = np.zeros_like(s)
        for c, h in zip(self._midpoints, self._steps, strict=True):  # one contiguous pass a step
            tail += h / 2 * _log_cosh_over_beta(s - c, beta)
        return (x - self.lo - 0.5 * self._span) * s - tail

    def _bregman_block(self, p, q, beta):
        # D_Phi(p, q) = D_{Phi*}(x~_q, x~_p): one convex log cosh term per step, each >= 0.
        f64 = np.dtype(np.float64)
        p, q = np.broadcast_arrays(p, q)
        sp = self._inverse_block(v.interior(p, self.lo, self.hi, f64), beta)
        sq = self._inverse_block(v.interior(q, self.lo, self.hi, f64), beta)
        out = np.zeros_like(sp)
        for c, h in zip(self._midpoints, self._steps, strict=True):
            dp, dq = sp - c, sq - c
            terms = (
                _log_cosh_over_beta(dq, beta)
                - _log_cosh_over_beta(dp, beta)
                - np.tanh(beta * dp) * (dq - dp)
            )
            out += h / 2 * np.maximum(terms, 0.0)
        q_on_boundary = (q <= self.lo) | (q >= self.hi)
        return np.where(q_on_boundary & (p != q), np.inf, np.where(p == q, 0.0, out))


def _log_cosh_over_beta(d, beta):
    """log cosh(beta d) / beta = |d| + (log1p(exp(-2 beta |d|)) - log 2) / beta, with no product
    beta d that could overflow and no factor 1 / (2 beta) that could be subnormal (beta up to the
    largest float)."""
    d = np.abs(d)
    with np.errstate(over="ignore", under="ignore"):
        return d + (np.log1p(np.exp(-2 * (beta * d))) - np.log(2.0)) / beta


def _blockwise(fn, *arrays, block: int = 1 << 14):
    """``fn`` applied to consecutive blocks of the (broadcast, flattened) float64 ``arrays``.

    The shifted-tanh computations make tens of passes over their temporaries; on blocks that stay
    in cache each pass costs a fraction of a pass over an array in main memory.
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))
    shape = arrays[0].shape
    flat = [a.ravel() for a in arrays]
    if flat[0].size <= block:
        return np.asarray(fn(*flat), dtype=float).reshape(shape)
    out = np.empty(flat[0].size)
    for start in range(0, out.size, block):
        out[start : start + block] = fn(*(a[start : start + block] for a in flat))
    return out.reshape(shape)


class Euclidean(IntervalMap):
    """Phi(x) = x^2 / 2 on [lo, hi]: MD is projected gradient descent, x - eta g clipped.

    This is the mirror map Theorem 1 does *not* produce (grad Phi stays bounded at the
    boundary), so the step needs the Bregman projection onto the box, which here is ``clip``.
    ``project`` is that clip, ``inverse`` the identity. It has no temperature: ``beta`` is
    accepted and validated for a uniform interface but does not change anything.
    """

    name = "euclidean"

    def __init__(self, lo: float = -1.0, hi: float = 1.0) -> None:
        super().__init__((lo, hi))

    def __repr__(self) -> str:
        return f"Euclidean(lo={self.lo}, hi={self.hi})"

    def _project(self, s, beta):
        return np.clip(s, self.lo, self.hi)

    def _inverse(self, x, beta):
        return x

    def inverse(self, x, beta):
        """grad Phi(x) = x: finite on the boundary, unlike the maps of Theorem 1."""
        dtype = v.float_dtype(x)
        v.check_beta(beta)
        return v.finish(self._check_x("x", x, dtype), dtype)

    def _potential(self, x, beta):
        return 0.5 * x**2

    def _bregman(self, p, q, beta):
        return 0.5 * (p - q) ** 2

    def md_step(self, x, g, eta, beta):
        """Projected gradient step clip(x - eta g, lo, hi); boundary points need no special care."""
        dtype = v.float_dtype(x, g)
        xs, gs, eta, _ = self._step_args(x, g, eta, beta, dtype)
        return v.finish(np.clip(xs - eta * gs, self.lo, self.hi), dtype)


class Softmax(MirrorMap):
    """u-space map onto the probability simplex over d levels: P_beta(u~) = softmax(beta u~).

    Arrays carry one probability vector per weight along the last axis (length ``len(levels)``);
    the weight itself is w = u . levels (Eq. 8, ``weights``). With the representative of Eq. 17,
    P_beta^{-1}(u) = log(u) / beta (Eq. 18), Phi_beta(u) = sum(u log u - u) / beta (Eq. 19, the
    negative entropy), D_{Phi_beta}(p, q) = KL(p || q) / beta, and the MD step is exponentiated
    gradient descent (Eq. 20), computed as softmax(log u - beta eta g).

    ``g`` is the gradient with respect to u; from a gradient g_w with respect to the weight it is
    g_w * levels (``lift_gradient``). With levels (-1, 1) everything reduces to ``Tanh``:
    w = tanh(beta (u~_1 - u~_0) / 2), and one step on u moves w exactly as ``Tanh().md_step(w,
    g_w, eta, beta)``.
    """

    name = "softmax"
    domain = "simplex"

    def __init__(self, levels=(-1.0, 1.0)) -> None:
        self.levels = v.check_levels(levels)
        self.d = self.levels.size

    def _check_u(self, name, u, dtype):
        return v.check_simplex(name, u, self.d, dtype)

    def _check_last_axis(self, name, arr):
        if arr.ndim == 0 or arr.shape[-1] not in (1, self.d):
            raise ValueError(
                f"{name} must have a last axis of length {self.d} (one entry per level), "
                f"got shape {arr.shape}"
            )

    def project(self, u_tilde, beta):
        """softmax(beta u~) along the last axis (Eq. 16), computed with the max subtracted."""
        dtype = v.float_dtype(u_tilde)
        s = v.as_finite("u_tilde", u_tilde)
        self._check_last_axis("u_tilde", s)
        s = np.broadcast_to(s, s.shape[:-1] + (self.d,))
        beta = v.check_beta(beta)
        # Shift first (softmax is shift-invariant): only -inf can then appear, which is exp 0.
        with np.errstate(over="ignore"):
            logits = beta * (s - s.max(axis=-1, keepdims=True))
        return v.finish(special.softmax(logits, axis=-1), dtype)

    def inverse(self, u, beta):
        """log(u) / beta (Eq. 18): the representative whose log-sum-exp is 0; -inf where u = 0."""
        dtype = v.float_dtype(u)
        us = self._check_u("u", u, dtype)
        beta = v.check_beta(beta)
        with np.errstate(divide="ignore"):
            return v.finish(np.log(us) / beta, dtype)

    def potential(self, u, beta):
        """Phi_beta(u) = sum(u log u - u) / beta (Eq. 19) over the last axis."""
        dtype = v.float_dtype(u)
        us = self._check_u("u", u, dtype)
        return v.finish((special.xlogy(us, us) - us).sum(axis=-1) / v.check_beta(beta), dtype)

    def bregman(self, p, q, beta):
        """KL(p || q) / beta over the last axis: +inf where q_l = 0 < p_l."""
        dtype = v.float_dtype(p, q)
        ps = self._check_u("p", p, dtype)
        qs = self._check_u("q", q, dtype)
        v.check_broadcast(p=ps, q=qs)
        return v.finish(relative_entropy_terms(ps, qs).sum(axis=-1) / v.check_beta(beta), dtype)

    def _step_args(self, u, g, eta, beta, dtype):
        us = self._check_u("u", u, dtype)
        gs = v.as_finite("g", g)
        self._check_last_axis("g", gs)
        eta = v.check_eta(eta)
        beta = v.check_beta(beta)
        _check_step_shape("u", us, gs, eta)
        with np.errstate(over="ignore"):
            dual_move = beta * eta * gs
        if not np.all(np.isfinite(dual_move)):
            raise ValueError("beta * eta * g overflows float64; reduce eta or g")
        return us, dual_move

    def md_step(self, u, g, eta, beta):
        """Exponentiated gradient (Eq. 20) in log-sum-exp form: softmax(log u - beta eta g).

        Zero entries are treated as the smallest normal number of the caller's precision, so
        they can grow again (exact EGD would keep them at zero).
        """
        dtype = v.float_dtype(u, g)
        us, dual_move = self._step_args(u, g, eta, beta, dtype)
        return v.finish(exponentiated_gradient(us, dual_move, np.finfo(dtype).tiny), dtype)

    def md_step_literal(self, u, g, eta, beta):
        """Eq. 20 as printed, in the caller's precision: u exp(-beta eta g) / sum. Unstable.

        When every exp(-beta eta g_l) underflows the ratio is 0 / 0 = NaN, and a large negative
        g overflows to inf / inf. Kept for the book; use ``md_step`` for computation.
        """
        dtype = v.float_dtype(u, g)
        self._step_args(u, g, eta, beta, dtype)
        ud = np.asarray(u, dtype=dtype)
        scale = dtype.type(beta) * np.asarray(eta, dtype=dtype) * np.asarray(g, dtype=dtype)
        with np.errstate(all="ignore"):
            num = ud * np.exp(-scale)
            return (num / num.sum(axis=-1, keepdims=True))[()]

    def weights(self, u):
        """w = u . levels (Eq. 8): the weight a probability vector stands for."""
        dtype = v.float_dtype(u)
        return v.finish(self._check_u("u", u, dtype) @ self.levels, dtype)

    def lift_gradient(self, g_w):
        """The gradient with respect to u of a loss of w = u . levels: g_w * levels."""
        dtype = v.float_dtype(g_w)
        g = v.as_finite("g_w", g_w)
        return v.finish(g[..., None] * self.levels, dtype)

    def round(self, u):
        """One-hot vector of the most probable level (ties to the upper level, as sign(0) = +1)."""
        dtype = v.float_dtype(u)
        us = v.as_finite("u", u)
        self._check_last_axis("u", us)
        upper_argmax = self.d - 1 - np.argmax(us[..., ::-1], axis=-1)
        return v.finish(np.eye(self.d)[upper_argmax], dtype)


def _check_step_shape(name, point, g, eta):
    # A step moves the given point: g and eta may broadcast to its shape but not widen it (a g of
    # three entries for one weight is a mistake, not three steps).
    shape = v.check_broadcast(**{name: point, "g": g, "eta": eta})
    if shape != point.shape:
        raise ValueError(
            f"g and eta must broadcast to the shape of {name} {point.shape}, got g {g.shape} and "
            f"eta {np.shape(eta)}"
        )


MAPS = {
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softmax": Softmax,
    "shifted_tanh": ShiftedTanh,
    "euclidean": Euclidean,
}


def get_map(name: str, levels=None) -> MirrorMap:
    """A map by name; ``levels`` applies to softmax, shifted_tanh and euclidean (its ends)."""
    v.check_choice("name", name, sorted(MAPS))
    if levels is None:
        return MAPS[name]()
    if name in ("tanh", "sigmoid"):
        fixed = MAPS[name]().levels
        if not np.array_equal(v.check_levels(levels), fixed):
            raise ValueError(f"levels of {name} are fixed to {tuple(fixed)}, got {levels}")
        return MAPS[name]()
    if name == "euclidean":
        q = v.check_levels(levels)
        return Euclidean(float(q[0]), float(q[-1]))
    return MAPS[name](levels)
