"""Bregman divergences: Eq. 3, non-negativity, the three-point identity and KL."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mdq_teach.bregman import (
    bregman,
    kl,
    negative_entropy,
    negative_entropy_grad,
    three_point_identity,
)
from mdq_teach.maps import Euclidean, ShiftedTanh, Sigmoid, Softmax, Tanh

INTERVAL_MAPS = [Tanh(), Sigmoid(), ShiftedTanh(), ShiftedTanh((0.0, 1.0, 2.0, 5.0)), Euclidean()]
IDS = [repr(m) for m in INTERVAL_MAPS]
fractions = st.floats(0.001, 0.999)
betas = st.floats(0.5, 10.0)
simplex3 = st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3).map(
    lambda r: np.array(r) / np.sum(r)
)


def _point(m, fraction):
    return m.lo + fraction * (m.hi - m.lo)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
@given(fp=fractions, fq=fractions, beta=betas)
@pytest.mark.fidelity("md:def2", "md:eq3")
def test_map_divergence_is_eq_3_of_its_potential(m, fp, fq, beta):
    p, q = _point(m, fp), _point(m, fq)
    generic = bregman(
        lambda x: m.potential(x, beta), lambda x: m.inverse(x, beta), p, q, elementwise=True
    )
    assert m.bregman(p, q, beta) == pytest.approx(generic, rel=1e-7, abs=1e-11)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
@given(fp=fractions, fq=fractions, beta=betas)
@pytest.mark.fidelity("md:def2")
def test_divergence_is_positive_off_the_diagonal_and_zero_on_it(m, fp, fq, beta):
    p, q = _point(m, fp), _point(m, fq)
    assert m.bregman(p, p, beta) == 0.0
    assume(abs(fp - fq) > 1e-4)
    assert m.bregman(p, q, beta) > 0.0


@pytest.mark.parametrize("m", [Tanh(), Sigmoid(), ShiftedTanh()], ids=["tanh", "sig", "st"])
def test_divergence_on_the_boundary(m):
    # Phi is finite on the closed domain, grad Phi is not: D(boundary, q) is finite, D(p,
    # boundary) infinite unless p is that same boundary point.
    mid = 0.5 * (m.lo + m.hi) + 0.1
    assert np.isfinite(m.bregman(m.hi, mid, 2.0))
    assert m.bregman(mid, m.hi, 2.0) == np.inf
    assert m.bregman(m.lo, m.lo, 2.0) == 0.0


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
@given(fa=fractions, fb=fractions, fc=fractions, beta=betas)
@pytest.mark.fidelity("md:eq36")
def test_three_point_identity_with_each_maps_closed_form_divergence(m, fa, fb, fc, beta):
    # The identity holds only if m.bregman is the divergence of a potential whose gradient is
    # m.inverse, so this checks the closed forms against each other (ShiftedTanh included).
    a, b, c = (_point(m, f) for f in (fa, fb, fc))
    cross = (m.inverse(c, beta) - m.inverse(b, beta)) * (a - b)
    own = m.bregman(a, b, beta) + m.bregman(b, c, beta) - cross
    assert m.bregman(a, c, beta) == pytest.approx(own, abs=1e-9)


# Divergences and mirror-map gradients written out by hand (Eq. 3 expanded for each potential),
# independent of mdq_teach: D(p, q) and grad Phi for Phi = Eq. 14 / beta, its sigmoid analogue,
# and x^2 / 2.
def _tanh_div(p, q, beta):
    return ((1 + p) * np.log((1 + p) / (1 + q)) + (1 - p) * np.log((1 - p) / (1 - q))) / (2 * beta)


def _sigmoid_div(p, q, beta):
    return (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))) / beta


HAND = {
    "tanh": (Tanh(), _tanh_div, lambda x, beta: np.arctanh(x) / beta),
    "sigmoid": (Sigmoid(), _sigmoid_div, lambda x, beta: np.log(x / (1 - x)) / beta),
    "euclidean": (Euclidean(), lambda p, q, beta: 0.5 * (p - q) ** 2, lambda x, beta: x),
}


@pytest.mark.parametrize("name", sorted(HAND))
@given(fa=fractions, fb=fractions, fc=fractions, beta=betas)
@pytest.mark.fidelity("md:eq36")
def test_three_point_identity_against_hand_written_divergences(name, fa, fb, fc, beta):
    m, div, grad = HAND[name]
    a, b, c = (_point(m, f) for f in (fa, fb, fc))
    expected_rhs = div(a, b, beta) + div(b, c, beta) - (grad(c, beta) - grad(b, beta)) * (a - b)
    # the identity itself, for the written-out divergence
    assert div(a, c, beta) == pytest.approx(expected_rhs, rel=1e-9, abs=1e-9)
    lhs, rhs = three_point_identity(
        lambda x: m.potential(x, beta), lambda x: m.inverse(x, beta), a, b, c, elementwise=True
    )
    assert lhs == pytest.approx(div(a, c, beta), rel=1e-7, abs=1e-9)
    assert rhs == pytest.approx(expected_rhs, rel=1e-7, abs=1e-9)
    assert m.bregman(a, c, beta) == pytest.approx(div(a, c, beta), rel=1e-7, abs=1e-11)


@given(simplex3, simplex3, simplex3, betas)
@pytest.mark.fidelity("md:eq36")
def test_three_point_identity_on_the_simplex(a, b, c, beta):
    # KL / beta and grad Phi = log(u) / beta (Eq. 18, 19), written out here.
    def div(p, q):
        return np.sum(p * np.log(p / q)) / beta

    cross = np.dot(np.log(c) / beta - np.log(b) / beta, a - b)
    assert div(a, c) == pytest.approx(div(a, b) + div(b, c) - cross, abs=1e-10)
    m = Softmax((-1, 0, 1))
    lhs, rhs = three_point_identity(
        lambda u: m.potential(u, beta), lambda u: m.inverse(u, beta), a, b, c
    )
    assert lhs == pytest.approx(div(a, c), rel=1e-9, abs=1e-12)
    assert rhs == pytest.approx(div(a, b) + div(b, c) - cross, rel=1e-9, abs=1e-10)


def test_three_point_identity_sign_convention_with_a_quadratic():
    # Phi = |x|^2 / 2: D(a, c) = |a - c|^2 / 2 and the cross term is <c - b, a - b>.
    a, b, c = np.array([1.0, 2.0]), np.array([-1.0, 0.5]), np.array([0.0, 3.0])
    lhs, rhs = three_point_identity(lambda x: 0.5 * np.sum(x**2, -1), lambda x: x, a, b, c)
    assert lhs == pytest.approx(0.5 * np.sum((a - c) ** 2))
    expected = 0.5 * np.sum((a - b) ** 2) + 0.5 * np.sum((b - c) ** 2) - np.dot(c - b, a - b)
    assert rhs == pytest.approx(expected)
    assert lhs == pytest.approx(rhs)


@given(simplex3, simplex3, betas)
@pytest.mark.fidelity("md:eq19")
def test_negative_entropy_divergence_is_kl(p, q, beta):
    explicit = float(np.sum(p * np.log(p / q)))
    assert kl(p, q) == pytest.approx(explicit, rel=1e-9, abs=1e-14)
    generic = bregman(negative_entropy, negative_entropy_grad, p, q)
    assert generic == pytest.approx(explicit, rel=1e-9, abs=1e-12)
    assert Softmax((-1, 0, 1)).bregman(p, q, beta) * beta == pytest.approx(explicit, abs=1e-12)
    assert kl(p, q) >= 0.0 and kl(p, p) == 0.0
    assert Softmax((-1, 0, 1)).bregman(p, p, beta) == 0.0
    if np.abs(p - q).max() > 1e-4:
        assert Softmax((-1, 0, 1)).bregman(p, q, beta) > 0.0


def test_kl_handles_zeros_like_its_definition():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    assert kl(p, q) == pytest.approx(np.log(2.0))
    assert kl(q, p) == np.inf
    assert negative_entropy(np.array([1.0, 0.0])) == 0.0


def test_bregman_batches_over_leading_axes():
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    q = np.array([0.4, 0.6])
    out = bregman(negative_entropy, negative_entropy_grad, p, q)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(kl(p[0], q)) and out[1] == pytest.approx(kl(p[1], q))
    assert bregman(lambda x: x**2, lambda x: 2 * x, 3.0, 1.0) == pytest.approx(4.0)


def test_bad_inputs_to_the_generic_functions():
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        bregman(negative_entropy, negative_entropy_grad, np.ones(3) / 3, np.ones(2) / 2)
    with pytest.raises(ValueError, match="p must be finite"):
        bregman(negative_entropy, negative_entropy_grad, np.array([np.nan, 1.0]), np.ones(2))
    with pytest.raises(ValueError, match="sum to 1"):
        kl(np.array([0.5, 0.6]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="non-negative"):
        negative_entropy(np.array([-0.1, 1.1]))
