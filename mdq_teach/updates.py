"""Mirror-descent steps: the stable closed forms, the stored-auxiliary form, and a numerical solver.

``md_step`` and ``md_step_stored`` are the two ways of running MD that the paper compares
(Eq. 15/20 against Eq. 23). ``md_step_numeric`` solves the proximal form of one MD step (Eq. 5),

    x_{k+1} = argmin_{y in X} eta <g, y> + D_{Phi_beta}(y, x_k),

with scipy's general-purpose minimisers and nothing but the map's Bregman divergence. It knows no
closed form, which makes it the independent check of every closed form in ``mdq_teach.maps``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from mdq_teach import _validate as v
from mdq_teach.maps import IntervalMap, MirrorMap, Softmax

__all__ = ["md_step", "md_step_stored", "md_step_numeric"]


def md_step(m: MirrorMap, x, g, eta, beta):
    """One MD step of map ``m`` on the primal point x (Eq. 5); same as ``m.md_step``."""
    return m.md_step(x, g, eta, beta)


def md_step_stored(m: MirrorMap, x_tilde, g, eta, beta):
    """One step of the stored-auxiliary form (Eq. 23): returns ``(x_tilde_new, x_new)``.

    x~_{k+1} = x~_k - eta g and x_{k+1} = P_beta(x~_{k+1}). For a fixed beta this is the same
    step as ``m.md_step(P_beta(x~_k), g, eta, beta)``; it differs once beta is annealed, because
    here x~ is kept while x = P_beta(x~) moves with beta, whereas the primal form keeps x and
    moves x~ = P_beta^{-1}(x). (This is also the straight-through estimator: no Jacobian of P.)
    """
    dtype = v.float_dtype(x_tilde, g)
    s = v.as_finite("x_tilde", x_tilde)
    gs = v.as_finite("g", g)
    eta = v.check_eta(eta)
    v.check_broadcast(x_tilde=s, g=gs, eta=eta)
    s_new = v.finish(s - eta * gs, dtype)
    return s_new, m.project(s_new, beta)


def md_step_numeric(m: MirrorMap, x, g, eta, beta, xatol: float = 1e-12):
    """Eq. 5 by numerical minimisation; slow, for checking closed forms on small arrays.

    ``xatol`` (interval maps) is the absolute tolerance of the bounded search, in (0, 1].

    Interval maps: for each element, bounded Brent search (``minimize_scalar``) over the closed
    domain. ``Softmax``: for each probability vector, SLSQP over the simplex (bounds and the
    sum-to-one constraint). As in ``md_step``, a point on the boundary is first
    moved to the nearest interior number of its precision. Returns float64.

    A minimiser of a smooth function is located to about sqrt(machine epsilon) relative to the
    curvature scale, so expect agreement with the closed forms to ~1e-7, not to roundoff.
    """
    dtype = v.float_dtype(x, g)
    beta = v.check_beta(beta)
    eta = v.check_eta(eta)
    gs = v.as_finite("g", g)
    # A NaN or inf tolerance makes scipy's bounded search return its first golden-section point
    # (-0.2361 for a true -0.0902) without a word; a non-positive one never stops on roundoff.
    xatol = v.check_scalar("xatol", xatol, 0.0, 1.0, lo_open=True)
    if isinstance(m, Softmax):
        us = v.check_simplex("u", x, m.d, dtype)
        shape = v.check_broadcast(u=us, g=gs, eta=eta)
        us, gs, eta = (np.broadcast_to(a, shape) for a in (us, gs, eta))
        out = np.empty(shape)
        for idx in np.ndindex(shape[:-1]):
            out[idx] = _simplex_argmin(m, us[idx], gs[idx], eta[idx], beta, dtype)
        return out
    if not isinstance(m, IntervalMap):
        raise ValueError(f"m must be one of the maps in mdq_teach.maps, got {type(m).__name__}")
    xs = v.check_interval("x", x, m.lo, m.hi, dtype)
    shape = v.check_broadcast(x=xs, g=gs, eta=eta)
    xs = v.interior(np.broadcast_to(xs, shape), m.lo, m.hi, dtype)
    gs, eta = np.broadcast_to(gs, shape), np.broadcast_to(eta, shape)
    out = np.empty(shape)
    for idx in np.ndindex(shape):
        xk, step = float(xs[idx]), float(eta[idx] * gs[idx])

        # Measured relative to y = x_k so the objective is small near the optimum.
        def objective(y, xk=xk, step=step):
            return step * (y - xk) + float(m.bregman(y, xk, beta))

        res = optimize.minimize_scalar(
            objective, bounds=(m.lo, m.hi), method="bounded", options={"xatol": xatol}
        )
        out[idx] = res.x
    return out[()]


def _simplex_argmin(m: Softmax, u, g, eta, beta, dtype):
    # SLSQP on the simplex itself. (Optimising softmax logits instead stalls near the vertices,
    # where the logit gradient vanishes.) The objective is scaled by beta, which leaves the
    # argmin unchanged and puts the divergence on the scale of KL. Its gradient
    # eta g + grad Phi(y) - grad Phi(u) uses the map's inverse, never its closed-form step.
    tiny = np.finfo(np.float64).tiny
    u = v.interior(u, 0.0, 1.0, dtype)
    u = u / u.sum()

    def on_simplex(y):  # SLSQP iterates satisfy the constraints only up to roundoff
        y = np.clip(y, tiny, 1.0)
        return y / y.sum()

    def objective(y):
        return beta * float(np.dot(eta * g, y - u) + m.bregman(on_simplex(y), u, beta))

    def gradient(y):
        return beta * (eta * g + m.inverse(on_simplex(y), beta) - m.inverse(u, beta))

    res = optimize.minimize(
        objective,
        u,
        jac=gradient,
        method="SLSQP",
        bounds=[(tiny, 1.0)] * m.d,
        constraints=[{"type": "eq", "fun": lambda y: y.sum() - 1, "jac": np.ones_like}],
        options={"ftol": 1e-16, "maxiter": 1000},
    )
    return on_simplex(res.x)
