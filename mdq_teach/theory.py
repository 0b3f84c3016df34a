"""Numerical checks of Theorem 1, the proximal-map criterion, and Theorem 2's bound and step size.

Theorem 1: if P: R -> C, C = (lo, hi) open, is invertible, (1) strictly increasing and (2) its
inverse diverges at the boundary of C, then Phi(x) = integral of P^{-1} is a mirror map with
domain C and grad Phi = P^{-1}. ``check_projection`` probes a callable P on a multi-scale grid
and reports each condition separately.

ProxConnect (Dockhorn et al.) asks instead whether a quantizer is the proximal map of some
regulariser r. In one dimension a map is a proximal map of some function exactly when it is
non-decreasing, and of a convex function exactly when it is also 1-Lipschitz (Gribonval and
Nikolova, *A characterization of proximity operators*, 2020); ``is_proximal_map`` checks both.

Theorem 2 (convergence with an annealed mirror map Phi_beta = Phi / beta, 1 <= beta <= B):
``md_bound`` and ``md_step_size``.

All checks are numerical: a grid can miss a wiggle narrower than its spacing, and float64 can
make a very steep map look flat (the plateaus of a shifted tanh at large beta). They are meant
for the maps of the book at moderate beta, and say what they measured.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from mdq_teach import _validate as v

__all__ = [
    "ProjectionReport",
    "ProximalReport",
    "check_projection",
    "is_proximal_map",
    "md_bound",
    "md_step_size",
]


def _table_text(title: str, rows: list[tuple[str, bool, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [title]
    for name, ok, note in rows:
        lines.append(f"  {name:<{width}}  {'yes' if ok else 'NO ':<3}  {note}")
    return "\n".join(lines)


def _table_html(title: str, rows: list[tuple[str, bool, str]]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{'&#10004;' if ok else '&#10008;'}</td>"
        f"<td>{html.escape(note)}</td></tr>"
        for n, ok, note in rows
    )
    return (
        f"<table><caption>{html.escape(title)}</caption>"
        "<tr><th>condition</th><th>holds</th><th>evidence</th></tr>"
        f"{body}</table>"
    )


@dataclass(frozen=True)
class ProjectionReport:
    """Which conditions of Theorem 1 a projection satisfies, with the evidence measured.

    ``strictly_increasing``: condition 1, non-decreasing on the whole grid, strictly increasing
    wherever float64 can still resolve its values from the boundary, and not constant on the
    boundary from a finite input on.
    ``maps_into_open_interval``: every value lies in [lo, hi], and the boundary is reached only
    in the limit (a value on the boundary while the inverse stays bounded means the boundary is
    reached at a finite input).
    ``limits_are_boundary``: P(s) -> lo as s -> -inf and P(s) -> hi as s -> +inf, so P is onto C.
    ``inverse_diverges_at_boundary``: condition 2, |P^{-1}(x)| -> inf as x -> lo or hi.
    ``valid``: all of them.
    """

    strictly_increasing: bool
    maps_into_open_interval: bool
    limits_are_boundary: bool
    inverse_diverges_at_boundary: bool
    details: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def valid(self) -> bool:
        return bool(
            self.strictly_increasing
            and self.maps_into_open_interval
            and self.limits_are_boundary
            and self.inverse_diverges_at_boundary
        )

    def rows(self) -> list[tuple[str, bool, str]]:
        d = self.details
        return [
            (
                "P strictly increasing (cond. 1)",
                self.strictly_increasing,
                f"smallest step between grid values {d.get('min_step', float('nan')):.3g}",
            ),
            (
                "P maps into the open interval",
                self.maps_into_open_interval,
                f"values in [{d.get('min_value', float('nan')):.6g}, "
                f"{d.get('max_value', float('nan')):.6g}]",
            ),
            (
                "P tends to the boundary",
                self.limits_are_boundary,
                f"P(-s_max) = {d.get('p_at_minus_smax', float('nan')):.6g}, "
                f"P(s_max) = {d.get('p_at_smax', float('nan')):.6g}",
            ),
            (
                "P^{-1} diverges at the boundary (cond. 2)",
                self.inverse_diverges_at_boundary,
                "growth of P^{-1} per decade closer to the boundary: "
                f"x{d.get('growth_lo', float('nan')):.3g} (lower), "
                f"x{d.get('growth_hi', float('nan')):.3g} (upper)",
            ),
        ]

    def __str__(self) -> str:
        title = f"Theorem 1 on [{self.details.get('lo')}, {self.details.get('hi')}]: " + (
            "valid projection" if self.valid else "NOT a valid projection"
        )
        return _table_text(title, self.rows())

    def _repr_html_(self) -> str:
        title = "Theorem 1: " + ("valid projection" if self.valid else "not a valid projection")
        return _table_html(title, self.rows())


@dataclass(frozen=True)
class ProximalReport:
    """Whether a 1-D map is a proximal map: ``proximal`` (of some function) = ``monotone``;
    ``convex_regulariser`` (proximal map of a convex function) = monotone and ``nonexpansive``.
    ``max_slope`` is the largest difference quotient found on the grid."""

    monotone: bool
    nonexpansive: bool
    max_slope: float

    @property
    def proximal(self) -> bool:
        return self.monotone

    @property
    def convex_regulariser(self) -> bool:
        return self.monotone and self.nonexpansive

    def rows(self) -> list[tuple[str, bool, str]]:
        return [
            ("monotone non-decreasing", self.monotone, ""),
            ("nonexpansive (1-Lipschitz)", self.nonexpansive, f"max slope {self.max_slope:.4g}"),
            ("proximal map of some r", self.proximal, "= monotone"),
            ("proximal map of a convex r", self.convex_regulariser, "= monotone and 1-Lipschitz"),
        ]

    def __str__(self) -> str:
        return _table_text("Proximal-map test", self.rows())

    def _repr_html_(self) -> str:
        return _table_html("Proximal-map test", self.rows())


def _vectorised(P):
    """Call P on an array; fall back to element by element if P only takes scalars."""

    def call(s):
        try:
            out = np.asarray(P(s), dtype=np.float64)
            if out.shape == s.shape:
                return out
        except (TypeError, ValueError):
            pass
        return np.array([float(P(float(t))) for t in s.ravel()]).reshape(s.shape)

    return call


def _check_interval_ends(lo, hi):
    lo_, hi_ = float(v.as_finite("lo", lo)), float(v.as_finite("hi", hi))
    if not lo_ < hi_:
        raise ValueError(f"lo must be < hi, got lo={lo_}, hi={hi_}")
    return lo_, hi_


def _probe_grid(s_max: float) -> np.ndarray:
    """Inputs at every scale from 1e-6 to s_max, plus a dense grid over [-10, 10]."""
    scales = np.logspace(-6, np.log10(s_max), 1200)
    return np.unique(np.concatenate([-scales, [0.0], scales, np.linspace(-10, 10, 4001)]))


def _preimage(P, s, values, target, upper: bool):
    """s with P(s) = target by bisection between grid points; +-inf if not reached on the grid."""
    hit = values >= target if upper else values <= target
    if not hit.any():
        return np.inf if upper else -np.inf
    if upper:
        i = int(np.argmax(hit))
        a, b = (s[i - 1], s[i]) if i > 0 else (s[0], s[0])
    else:
        i = len(hit) - 1 - int(np.argmax(hit[::-1]))
        a, b = (s[i], s[i + 1]) if i < len(s) - 1 else (s[-1], s[-1])
    for _ in range(200):
        mid = 0.5 * (a + b)
        if mid in (a, b):
            break
        # a stays on the low side of the target, b on the high side (P is taken as increasing).
        if P(np.array([mid]))[0] < target:
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


def _growth(preimages: np.ndarray) -> float:
    """Ratio by which |P^{-1}| grows per decade closer to the boundary, over the last decades.

    A bounded inverse converges, so its increments shrink geometrically (ratio well below 1);
    tanh's grows by the same amount every decade (ratio 1), an algebraic one faster (> 1).
    """
    if not np.all(np.isfinite(preimages)):
        return np.inf
    inc = np.abs(np.diff(preimages))[-7:]
    if inc[0] <= 0:
        return np.inf if inc[-1] > 0 else 0.0
    if inc[-1] <= 0:
        return 0.0
    return float((inc[-1] / inc[0]) ** (1 / (len(inc) - 1)))


def check_projection(P, lo, hi, s_max: float = 1e6) -> ProjectionReport:
    """Check numerically whether P: R -> (lo, hi) satisfies the conditions of Theorem 1.

    ``P`` takes a numpy array (or a scalar) of auxiliary values; ``s_max`` is the largest input
    probed. The inverse is located by bisection at distances span * 10^-k (k = 1 ... 12) from
    each boundary; it counts as divergent when its growth per decade does not decay
    geometrically (ratio >= 0.9; a bounded inverse such as hard tanh's gives ~0.1).
    """
    lo, hi = _check_interval_ends(lo, hi)
    s_max = float(v.check_positive("s_max", s_max, minimum=10.0))
    span = hi - lo
    call = _vectorised(P)
    s = _probe_grid(s_max)
    values = call(s)
    details: dict = {"lo": lo, "hi": hi, "s_max": s_max}
    if not np.all(np.isfinite(values)):
        details["non_finite_at"] = float(s[~np.isfinite(values)][0])
        return ProjectionReport(False, False, False, False, details)

    rounding = 8 * np.finfo(float).eps * max(1.0, abs(lo), abs(hi))
    steps = np.diff(values)
    resolvable = np.minimum(values - lo, hi - values) > 1e-9 * span
    both_resolvable = resolvable[1:] & resolvable[:-1]
    increasing_where_resolvable = bool(
        np.all(steps >= -rounding) and np.all(steps[both_resolvable] > 0)
    )

    in_closed = bool(values.min() >= lo - rounding and values.max() <= hi + rounding)
    limits = bool(abs(values[0] - lo) <= 1e-6 * span and abs(values[-1] - hi) <= 1e-6 * span)

    deltas = span * 10.0 ** -np.arange(1, 13)
    inv_hi = np.array([_preimage(call, s, values, hi - d, upper=True) for d in deltas])
    inv_lo = np.array([_preimage(call, s, values, lo + d, upper=False) for d in deltas])
    growth_hi, growth_lo = _growth(inv_hi), _growth(inv_lo)
    diverges = bool(limits and growth_hi >= 0.9 and growth_lo >= 0.9)

    # A value on the boundary is float64 saturation if the inverse diverges (tanh beyond
    # |s| ~ 19); if the inverse stays bounded, P really reaches the boundary at a finite input
    # and is constant beyond it, so it is neither into the open interval nor strictly increasing.
    touches = bool(values.min() <= lo or values.max() >= hi)
    reaches_boundary = touches and not diverges
    strictly = increasing_where_resolvable and not reaches_boundary
    into_open = in_closed and not reaches_boundary

    details.update(
        min_step=float(steps[both_resolvable].min()) if both_resolvable.any() else float("nan"),
        min_value=float(values.min()),
        max_value=float(values.max()),
        p_at_minus_smax=float(values[0]),
        p_at_smax=float(values[-1]),
        distances=deltas,
        inverse_near_hi=inv_hi,
        inverse_near_lo=inv_lo,
        growth_hi=growth_hi,
        growth_lo=growth_lo,
    )
    return ProjectionReport(strictly, into_open, limits, diverges, details)


def is_proximal_map(P, lo, hi, n: int = 20001) -> ProximalReport:
    """Is the 1-D map P a proximal map, judged on n grid points over the inputs [lo, hi]?

    Monotone (non-decreasing) iff P is the proximal map of some function; monotone and
    nonexpansive (every difference quotient in [0, 1]) iff of a convex function. A jump, as in
    sign, shows up as a slope of about (jump size) / (grid spacing).
    """
    lo, hi = _check_interval_ends(lo, hi)
    n = v.check_count("n", n, minimum=3, maximum=10**8)
    s = np.linspace(lo, hi, n)
    values = _vectorised(P)(s)
    if not np.all(np.isfinite(values)):
        raise ValueError("P returned NaN or inf on [lo, hi]; it must be finite there")
    rounding = 8 * np.finfo(float).eps * max(1.0, float(np.abs(values).max()))
    slopes = np.diff(values) / np.diff(s)
    monotone = bool(np.all(np.diff(values) >= -rounding))
    max_slope = float(np.abs(slopes).max())
    nonexpansive = bool(max_slope <= 1 + 1e-9 + rounding / float(np.diff(s).min()))
    return ProximalReport(monotone, nonexpansive, max_slope)


def _theorem2_args(R, L, rho, B, t):
    return (
        v.check_positive("R", R),
        v.check_positive("L", L),
        v.check_positive("rho", rho),
        v.check_positive("B", B, minimum=1.0, inclusive=True),
        v.check_positive("t", t),
    )


def md_bound(R, L, rho, B, t):
    """Theorem 2 (Eq. 22): f(average of x^0 ... x^{t-1}) - f(x*) <= R L sqrt(2 B / (rho t)).

    R: R^2 = sup over the domain of Phi(x) - Phi(x^0), with x^0 = argmin Phi the starting point
    (Phi the beta = 1 mirror map; for tanh, Eq. 14 gives R^2 = log 2).
    L: Lipschitz constant of the convex objective f with respect to the norm ||.||.
    rho: Phi is rho-strongly convex with respect to ||.|| (rho = 1 for tanh and |.|; for the
    negative entropy on the simplex, rho = 1 with respect to ||.||_1).
    B: the cap on the annealing parameter, 1 <= beta <= B (B >= 1 is required).
    t: number of iterations. Arrays broadcast (e.g. a range of t for a plot).
    The bound holds with the step size ``md_step_size(R, L, rho, B, t)``.
    """
    R, L, rho, B, t = _theorem2_args(R, L, rho, B, t)
    return (R * L * np.sqrt(2 * B / (rho * t)))[()]


def md_step_size(R, L, rho, B, t):
    """Theorem 2's step size eta = (R / L) sqrt(2 rho / (B t)); arguments as in ``md_bound``."""
    R, L, rho, B, t = _theorem2_args(R, L, rho, B, t)
    return (R / L * np.sqrt(2 * rho / (B * t)))[()]
