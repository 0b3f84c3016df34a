"""Bregman divergences (Eq. 3) from any potential, the three-point identity, and KL.

    D_Phi(p, q) = Phi(p) - Phi(q) - <grad Phi(q), p - q>                          (Eq. 3)

is the gap at p between Phi and its tangent at q. Two facts carry the convergence proof of
Theorem 2 (Appendix A.3):

* three-point identity: for any a, b, c in the domain,
  D(a, c) = D(a, b) + D(b, c) - <grad Phi(c) - grad Phi(b), a - b>;
* with the negative entropy Phi(u) = sum u log u, D_Phi is the Kullback-Leibler divergence on the
  probability simplex, which is why the softmax mirror map gives exponentiated gradient (Eq. 20).

Vectors lie along the last axis; leading axes are a batch. ``elementwise=True`` treats every
entry as its own one-dimensional problem (for separable potentials such as Eq. 14).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from mdq_teach import _validate as v
from mdq_teach.maps import relative_entropy_terms

__all__ = ["bregman", "three_point_identity", "kl", "negative_entropy", "negative_entropy_grad"]


def _inner(a, b, elementwise: bool):
    prod = a * b
    return prod if elementwise else prod.sum(axis=-1)


def _as_vectors(name, x, elementwise):
    arr = v.as_finite(name, x)
    return arr if elementwise or arr.ndim > 0 else arr[None]


def bregman(phi, grad_phi, p, q, elementwise: bool = False):
    """D_Phi(p, q) = Phi(p) - Phi(q) - <grad Phi(q), p - q> (Eq. 3), in float64.

    ``phi`` maps a stack of vectors (last axis) to their values, ``grad_phi`` to the gradients
    (same shape as the input). With ``elementwise=True`` both act entry by entry and no sum is
    taken. A scalar p and q count as one-dimensional vectors.
    """
    ps = _as_vectors("p", p, elementwise)
    qs = _as_vectors("q", q, elementwise)
    v.check_broadcast(p=ps, q=qs)
    out = np.asarray(phi(ps)) - np.asarray(phi(qs)) - _inner(grad_phi(qs), ps - qs, elementwise)
    return out[()]


def three_point_identity(phi, grad_phi, a, b, c, elementwise: bool = False):
    """Both sides of D(a, c) = D(a, b) + D(b, c) - <grad Phi(c) - grad Phi(b), a - b>.

    Returns ``(lhs, rhs)``. Derivation: expanding the three divergences with Eq. 3, the values
    Phi(b) cancel and what is left of D(a, c) - D(a, b) - D(b, c) is
    -<grad Phi(c), a - c> + <grad Phi(b), a - b> + <grad Phi(c), b - c>
    = -<grad Phi(c) - grad Phi(b), a - b>.
    """
    a_, b_, c_ = (_as_vectors(n, x, elementwise) for n, x in (("a", a), ("b", b), ("c", c)))
    v.check_broadcast(a=a_, b=b_, c=c_)
    lhs = bregman(phi, grad_phi, a_, c_, elementwise)
    cross = _inner(grad_phi(c_) - grad_phi(b_), a_ - b_, elementwise)
    rhs = bregman(phi, grad_phi, a_, b_, elementwise) + bregman(phi, grad_phi, b_, c_, elementwise)
    return lhs, (rhs - cross)[()]


def negative_entropy(u):
    """Phi(u) = sum_l u_l log u_l over the last axis (0 log 0 = 0); Eq. 19 up to 1/beta and a
    constant."""
    us = v.as_finite("u", u)
    if np.any(us < 0):
        raise ValueError(f"u must be non-negative (allowed range [0, inf)), got min {us.min()}")
    return special.xlogy(us, us).sum(axis=-1)[()]


def negative_entropy_grad(u):
    """grad Phi(u) = log u + 1 (-inf where u = 0)."""
    us = v.as_finite("u", u)
    if np.any(us < 0):
        raise ValueError(f"u must be non-negative (allowed range [0, inf)), got min {us.min()}")
    with np.errstate(divide="ignore"):
        return (np.log(us) + 1)[()]


def kl(p, q):
    """KL(p || q) = sum_l p_l log(p_l / q_l) over the last axis, for probability vectors.

    0 log(0 / q) = 0, and the result is +inf where q_l = 0 < p_l. Float16 and float32 inputs
    are checked against a tolerance of their own precision and give a result of their dtype.
    """
    dtype = v.float_dtype(p, q)
    ps, qs = v.as_finite("p", p), v.as_finite("q", q)
    if ps.ndim == 0 or qs.ndim == 0:
        raise ValueError("p and q must be probability vectors along the last axis, got scalars")
    v.check_broadcast(p=ps, q=qs)
    # Sums to 1 up to rounding of the caller's precision (float16, float32 or float64).
    ps = v.check_simplex("p", ps, ps.shape[-1], dtype)
    qs = v.check_simplex("q", qs, qs.shape[-1], dtype)
    # Each term p log(p / q) - p + q is >= 0 (the -p + q sum to zero on the simplex), and it is
    # evaluated without forming p / q where that would overflow.
    return v.finish(relative_entropy_terms(ps, qs).sum(axis=-1), dtype)
