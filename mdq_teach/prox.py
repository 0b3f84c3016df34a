"""Proximal quantizers, their regularisers, and ProxConnect (Dockhorn et al. 2021).

A quantizer P maps a stored float theta to the weight w = P(theta) the network uses. P is the
proximal map of a regulariser r,

    P(theta) = prox_r(theta) = argmin_w  (w - theta)^2 / 2 + r(w),

exactly when P is monotone non-decreasing (in one dimension), and r is convex exactly when P is
also 1-Lipschitz. The optimality condition theta in w + dr(w) gives r' = P^{-1} - identity, so r is
recovered from P by integrating its (generalised) inverse; Theorem 1's mirror map of the first
paper (Eq. 14 for tanh) is then Phi = w^2/2 + r, and MD-S with P (Eq. 23) is ProxConnect with r.

Every quantizer here acts element by element on any sorted level set q_0 < ... < q_n and is
written as a sum of monotone steps at the midpoints m_i = (q_i + q_{i+1}) / 2 with heights
h_i = q_{i+1} - q_i,

    P(theta) = q_0 + sum_i h_i s_beta((theta - m_i) / h_i),

with s a hard, linear or tanh step (BinaryRelax mixes the identity into the hard staircase). beta
is the annealing parameter; as beta grows every family tends to the hard quantizer (the nearest
level, BC), which beta = inf gives exactly.

The regulariser is evaluated without a closed form for r: for w = P(theta), Young's identity for the
integral of an inverse gives

    int_{w_0}^{w} P^{-1}(s) ds = theta w - theta_0 w_0 - int_{theta_0}^{theta} P,

which holds for the generalised inverse (flat pieces of P, jumps of P) and needs only the
antiderivative A of P, known in closed form for each step. So r(w) = theta w - A(theta) - w^2/2
+ const with theta any point of P^{-1}(w), found by bisection; r = +inf off the closure of the
range of P (the gaps that a discontinuous P jumps over are never chosen by the prox). The constant
is fixed by r(q_0) = 0.
"""

from __future__ import annotations

import numpy as np

from mdq_teach import _validate as v
from mdq_teach.maps import ShiftedTanh, round_to_levels, shifted_tanh, shrink_to_nearest_level

__all__ = [
    "QUANTIZERS",
    "BinaryRelaxQuantizer",
    "HardQuantizer",
    "PiecewiseLinearQuantizer",
    "TanhQuantizer",
    "dual_averaging",
    "get_quantizer",
    "post_training_quantize",
    "proxconnect_step",
]

# Bisection to the last bit of a float64 in any bracket we build (bracket widths stay below 2^70).
_BISECTIONS = 200
_BRACKET_DOUBLINGS = 64
# A point within this distance of P's range (relative to the level span) counts as in its closure.
_RANGE_TOL = 1e-9


def _levels(levels, name: str = "levels") -> np.ndarray:
    return v.check_levels(levels, name)


def _finite_array(name, x) -> np.ndarray:
    return v.as_finite(name, x)


def _softplus(x):
    return np.logaddexp(0.0, x)


class _Quantizer:
    """Shared machinery: validation, the staircase limit, and the regulariser from Young's identity.

    A subclass defines ``_project(theta, beta)`` and ``_young(theta, w, beta)``, the latter equal to
    theta * w - A(theta) for an antiderivative A of P (any fixed constant), written to stay accurate
    when |theta| is large.
    """

    name = ""
    #: smallest allowed beta and whether it is itself allowed
    beta_min = 0.0
    beta_min_inclusive = False

    def __init__(self, levels=(-1.0, 1.0)):
        self.levels = _levels(levels)
        self.midpoints = 0.5 * (self.levels[1:] + self.levels[:-1])
        self.heights = np.diff(self.levels)
        self._r_at_q0 = {}

    def __repr__(self):
        return f"{type(self).__name__}(levels={self.levels.tolist()})"

    def check_beta(self, beta) -> float:
        """beta as a float; +inf (the end of annealing, the hard quantizer) is allowed."""
        rel = ">=" if self.beta_min_inclusive else ">"
        message = f"beta must be a number {rel} {self.beta_min} or inf for {self.name!r}"
        try:
            b = v.check_scalar("beta", beta, allow_inf=True)
        except ValueError as err:
            raise ValueError(f"{message}, got {beta!r}") from err
        ok = b >= self.beta_min if self.beta_min_inclusive else b > self.beta_min
        if not ok:
            raise ValueError(f"{message}, got {beta}")
        return b

    def __call__(self, theta, beta):
        """w = P_beta(theta), element by element; beta = inf gives the nearest level."""
        theta = _finite_array("theta", theta)
        if np.isinf(self.check_beta(beta)):
            return self.limit(theta)
        return self._project(theta, float(beta))

    def limit(self, theta):
        """The end of annealing (beta -> inf): the nearest level, ties to the upper level."""
        theta = _finite_array("theta", theta)
        return round_to_levels(theta, self.levels)

    # ---- the regulariser -----------------------------------------------------------------------

    def inverse(self, w, beta):
        """A point theta of the generalised inverse P^{-1}(w) (the smallest one, by bisection; for
        tanh the inverse of the shifted tanh), and whether w lies in the closure of the range of P.
        Returns (theta, in_range); theta means nothing where in_range is False."""
        w = _finite_array("w", w)
        if np.isinf(self.check_beta(beta)):
            return HardQuantizer(self.levels)._inverse(w, 1.0)
        return self._inverse(w, float(beta))

    def _inverse(self, w, beta):
        P = lambda t: self._project(t, beta)
        center = 0.5 * (self.levels[0] + self.levels[-1])
        span = self.levels[-1] - self.levels[0]
        lo = np.full(w.shape, center - span - 1.0)
        hi = np.full(w.shape, center + span + 1.0)
        # Widen the bracket until P(lo) <= w <= P(hi); stop once P no longer moves at the ends
        # (a bounded range is exhausted): a w beyond it is off the range.
        p_lo, p_hi = P(lo), P(hi)
        for k in range(_BRACKET_DOUBLINGS):
            low_bad, high_bad = p_lo > w, p_hi < w
            if not (low_bad.any() or high_bad.any()):
                break
            step = (span + 1.0) * 2.0**k
            lo = np.where(low_bad, lo - step, lo)
            hi = np.where(high_bad, hi + step, hi)
            new_lo, new_hi = P(lo), P(hi)
            if np.array_equal(new_lo, p_lo) and np.array_equal(new_hi, p_hi):
                break
            p_lo, p_hi = new_lo, new_hi
        bracketed = (p_lo <= w) & (p_hi >= w)
        # Smallest theta with P(theta) >= w: invariant P(hi) >= w; stop when no midpoint is new.
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if np.all((mid == lo) | (mid == hi)):
                break
            up = P(mid) >= w
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        tol = _RANGE_TOL * (1.0 + span)
        # In the closure of the range: reached from above (P(hi) = w) or as a left limit of P.
        in_range = bracketed & ((P(hi) - w <= tol) | (w - P(lo) <= tol))
        return hi, in_range

    def _unnormalised_r(self, w, beta):
        theta, in_range = self._inverse(w, beta)
        r = np.full(w.shape, np.inf)
        # Only where w is in the closure of the range: off it theta means nothing (it may be inf).
        r[in_range] = self._young(theta[in_range], w[in_range], beta) - 0.5 * w[in_range] ** 2
        return r

    def regulariser(self, w, beta):
        """r(w) with prox_r = P_beta, normalised so r(q_0) = 0; +inf off the closure of P's range.

        Recovered numerically from r' = P^{-1} - identity via Young's identity (module docstring).
        """
        w = _finite_array("w", w)
        if np.isinf(self.check_beta(beta)):
            return HardQuantizer(self.levels).regulariser(w, 1.0)
        beta = float(beta)
        if beta not in self._r_at_q0:  # the normalising constant, once per beta
            self._r_at_q0[beta] = self._unnormalised_r(np.array([self.levels[0]]), beta)[0]
        return self._unnormalised_r(w, beta) - self._r_at_q0[beta]

    def mirror_map(self, w, beta):
        """Phi(w) = w^2/2 + r(w): Theorem 1's mirror map, an integral of P^{-1} (Eq. 14, tanh)."""
        w = _finite_array("w", w)
        return 0.5 * w**2 + self.regulariser(w, beta)

    # ---- for subclasses ------------------------------------------------------------------------

    def _staircase_area(self, theta):
        """sum_i h_i max(theta - m_i, 0): the staircase's antiderivative is q_0 theta plus this."""
        return np.maximum(theta[..., None] - self.midpoints, 0.0) @ self.heights


class HardQuantizer(_Quantizer):
    """BinaryConnect's quantizer: the nearest level, ties to the upper one (sign(0) = +1).

    The proximal map of the indicator of the level set (r = 0 on the levels, +inf elsewhere); beta
    is accepted for a uniform interface and ignored.
    """

    name = "hard"

    def _project(self, theta, beta):
        return round_to_levels(theta, self.levels)

    def _young(self, theta, w, beta):
        return theta * (w - self.levels[0]) - self._staircase_area(theta)


class PiecewiseLinearQuantizer(_Quantizer):
    """On each gap [q_i, q_{i+1}] with midpoint m_i: clip(m_i + beta (theta - m_i), q_i, q_{i+1});
    outside the hull, clip to the hull.

    For beta >= 1 this is continuous and non-decreasing (at a level q_i both neighbouring gaps give
    q_i) and equals q_0 + sum_i clip(h_i/2 + beta (theta - m_i), 0, h_i), a sum of ramps of slope
    beta centred at the midpoints. beta = 1 is the identity on the hull (the Euclidean projection
    onto [q_0, q_n], r its indicator, convex); beta -> inf is the staircase. beta >= 1 is required:
    below 1 the formula jumps at every level (still monotone, but discontinuous, and its pieces no
    longer reach the levels). For beta > 1 the regulariser is
    r(w) = (1 - 1/beta)/2 (w - q_i)(q_{i+1} - w) on each gap, a concave bump between levels.
    """

    name = "linear"
    beta_min = 1.0
    beta_min_inclusive = True

    def _project(self, theta, beta):
        # The gap that holds theta (the first or last one outside the hull): clip lands exactly on
        # a level, and for beta >= 1 it also clips the outside to the hull.
        i = np.clip(np.searchsorted(self.levels, theta, side="right") - 1, 0, self.heights.size - 1)
        m = self.midpoints[i]
        return np.clip(m + beta * (theta - m), self.levels[i], self.levels[i + 1])

    def _young(self, theta, w, beta):
        # Same map as a sum of ramps q_0 + sum_i clip(h_i/2 + beta (theta - m_i), 0, h_i).
        t = theta[..., None] - self.midpoints
        u = np.clip(0.5 * self.heights + beta * t, 0.0, self.heights)
        # int_{-inf}^{t} clip(h/2 + beta s, 0, h) ds = u^2 / (2 beta) + h max(t - (h/2)/beta, 0).
        area = u**2 / (2.0 * beta) + self.heights * np.maximum(t - 0.5 * self.heights / beta, 0.0)
        return theta * (w - self.levels[0]) - area.sum(axis=-1)


class BinaryRelaxQuantizer(_Quantizer):
    """BinaryRelax (Yin et al. 2018): (theta + beta Q(theta)) / (1 + beta), Q the hard quantizer.

    The proximal map of r(w) = (beta / 2) dist(w, levels)^2: for a fixed level q the minimiser of
    (w - theta)^2/2 + beta (w - q)^2/2 is (theta + beta q)/(1 + beta) with value
    beta/(2(1 + beta)) (theta - q)^2, smallest for the nearest q. P jumps at every midpoint, so r is
    non-convex; the recovered r is beta/2 dist^2 on P's range and +inf on the gaps it jumps over.
    """

    name = "binaryrelax"

    def _project(self, theta, beta):
        # With beta = 2 tau this is ProxQuant's L2 prox of R_2 = (x - q)^2 (toy.prox_w):
        # BinaryRelax's r = (beta / 2) dist^2 is tau R_2, so both call the one kernel.
        return shrink_to_nearest_level(theta, beta, self.levels)

    def _young(self, theta, w, beta):
        # A = theta^2 / (2 (1 + beta)) + beta / (1 + beta) A_hard.
        hard = self.levels[0] * theta + self._staircase_area(theta)
        return theta * w - theta**2 / (2.0 * (1.0 + beta)) - beta / (1.0 + beta) * hard


class TanhQuantizer(_Quantizer):
    """tanh(beta theta) for the levels {-1, 1} (Eq. 12); for two levels {a, b} the same curve moved
    and scaled, m + (h/2) tanh(beta (theta - m)); for more levels the shifted tanh (Eq. 21), one
    tanh step per gap centred at its midpoint (``mdq_teach.maps.ShiftedTanh``).

    A proximal map for every beta (it is increasing); its regulariser is convex exactly when its
    largest slope, beta * max_i h_i / 2, is at most 1 (beta <= 1 for {-1, 1}).
    """

    name = "tanh"

    def _project(self, theta, beta):
        # The one copy of the shifted tanh (maps.shifted_tanh): tanh(beta theta) bit for bit on
        # {-1, 1}, and exactly a level wherever a step has saturated.
        return np.clip(shifted_tanh(theta, beta, self.levels), self.levels[0], self.levels[-1])

    def _inverse(self, w, beta):
        # P is smooth and increasing with range (q_0, q_last): its inverse is the shifted tanh's
        # (closed form for up to three levels, Halley's method beyond), 16 to 140 times faster
        # than the bisection (chapter 9's explorer computes r at every slider step). An outer
        # level itself is the limit of P: its theta is that of the float next to it inside (P
        # is flat there to the last bit, so the bisection's smallest theta differs from it by
        # less than P can tell apart, and r by an ulp times theta). Beyond the outer levels w is
        # off the range: theta is -inf or +inf. The bisection takes any entry the inverse could
        # not give finite.
        lo, hi = self.levels[0], self.levels[-1]
        in_range = (w >= lo) & (w <= hi)
        theta = np.where(w < lo, -np.inf, np.inf)
        if in_range.any():
            inside = np.clip(w[in_range], np.nextafter(lo, hi), np.nextafter(hi, lo))
            theta[in_range] = ShiftedTanh(self.levels)._inverse(inside, beta)
        bad = in_range & ~np.isfinite(theta)
        if bad.any():
            theta[bad], in_range[bad] = super()._inverse(w[bad], beta)
        return theta, in_range

    def _young(self, theta, w, beta):
        # Each step is h sigmoid(2 beta t); its antiderivative h softplus(2 beta t) / (2 beta).
        t = theta[..., None] - self.midpoints
        area = (_softplus(2.0 * beta * t) / (2.0 * beta)) @ self.heights
        return theta * (w - self.levels[0]) - area


QUANTIZERS = {
    cls.name: cls
    for cls in (HardQuantizer, PiecewiseLinearQuantizer, BinaryRelaxQuantizer, TanhQuantizer)
}


def get_quantizer(name: str, levels=(-1.0, 1.0)):
    """The quantizer called ``name`` (one of :data:`QUANTIZERS`) on ``levels``."""
    v.check_choice("name", name, sorted(QUANTIZERS))
    return QUANTIZERS[name](levels)


# --------------------------------------------------------------------------------------------------
# ProxConnect


def proxconnect_step(theta, grad, eta, quantizer, beta):
    """One ProxConnect step: theta <- theta - eta * grad, then w = P_beta(theta).

    ``grad`` is the gradient of the loss at the current quantized point w_t. This is Eq. 23 (MD-S)
    with the projection P = prox_r: with the hard quantizer it is BinaryConnect, with tanh
    MD-tanh-S.
    Returns (theta_new, w_new).
    """
    eta = v.check_scalar("eta", eta, 0.0, lo_open=True)
    if not callable(quantizer):
        raise ValueError(f"quantizer must be a callable quantizer(theta, beta), got {quantizer!r}")
    theta = _finite_array("theta", theta)
    grad = _finite_array("grad", grad)
    if grad.shape != theta.shape:
        raise ValueError(f"grad must have the shape of theta {theta.shape}, got {grad.shape}")
    theta = theta - eta * grad
    return theta, np.asarray(quantizer(theta, beta), dtype=float)


def dual_averaging(grad, theta0, etas, regulariser, candidates):
    """Dual averaging in its argmin form, by brute force over a finite candidate set.

    w_t = argmin_{w in candidates} <G_t - theta0, w> + |w|^2 / 2 + mu_t r(w), element by element,
    with G_t = sum_{s<t} eta_s grad(w_s) and mu_t = sum_{s<t} eta_s. Completing the square shows
    this is prox_{mu_t r}(theta0 - G_t), i.e. ProxConnect with theta_t = theta0 - G_t; the function
    is written without any quantizer so that it checks that claim independently.

    ``grad(w)`` is the loss gradient, ``regulariser(w)`` is r (vectorised, may be +inf),
    ``candidates`` a 1-D array of the allowed values of each coordinate (the levels for BC, a fine
    grid otherwise). Ties go to the larger candidate (sign(0) = +1). Returns the iterates
    w_0..w_T, shape (len(etas) + 1,) + shape(theta0).
    """
    theta0 = _finite_array("theta0", theta0)
    etas = _finite_array("etas", etas)
    if etas.ndim != 1 or np.any(etas <= 0):
        raise ValueError("etas must be a 1-D array of step sizes > 0")
    c = _finite_array("candidates", candidates)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"candidates must be a non-empty 1-D array, got shape {c.shape}")
    c = np.sort(c)[::-1]  # argmin returns the first minimiser: the largest candidate on a tie
    r = np.asarray(regulariser(c), dtype=float)
    if r.shape != c.shape or np.any(np.isnan(r)):
        raise ValueError("regulariser must map the candidates to an array of their shape, no NaN")

    def argmin(G, mu):
        obj = (G - theta0)[..., None] * c + 0.5 * c**2 + (mu * r if mu > 0 else 0.0)
        return c[np.argmin(obj, axis=-1)]

    G, mu = np.zeros_like(theta0), 0.0
    out = [argmin(G, mu)]
    for eta in etas:
        G = G + eta * _finite_array("grad(w)", grad(out[-1]))
        mu += eta
        out.append(argmin(G, mu))
    return np.array(out)


def post_training_quantize(w, quantizer):
    """Post-training quantization, ProxConnect's one-step case: train in float (the quantizer is
    the identity until the end), then apply the end-of-annealing quantizer once: the nearest level
    of ``quantizer.levels`` (ties to the upper level). ``quantizer`` is a quantizer or levels."""
    levels = quantizer.levels if hasattr(quantizer, "levels") else quantizer
    levels = _levels(levels, "quantizer (a quantizer or its levels)")
    return round_to_levels(_finite_array("w", w), levels)
