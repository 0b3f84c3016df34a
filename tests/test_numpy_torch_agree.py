"""The torch formulas of ``mdq_teach.nn.quantize`` against the numpy core, on random inputs.

Each formula is written once per array library; these property-based tests hold the two copies
together (projections, inverses, mirror-descent steps, proximal maps, nearest level and rounding,
the shifted tanh, the softmax and its two-level sigmoid form), in float32 and float64 and for beta
up to 1e4. The numpy side computes in float64 from the same (possibly float32) inputs, so the
tolerance is the torch dtype's rounding error times the conditioning of the formula.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdq_teach import maps, prox, toy
from mdq_teach.nn import quantize as tq

torch.set_num_threads(1)

DTYPES = st.sampled_from([torch.float32, torch.float64])
BETAS = st.floats(-1.0, 4.0).map(lambda e: float(10**e))  # 0.1 ... 1e4, log-uniform
LEVELS = st.sampled_from([(-1.0, 1.0), (-1.0, 0.0, 1.0), (0.0, 1.0, 3.0), (-2.0, -0.5, 0.5, 2.0)])
TWO_LEVELS = st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (-0.5, 2.0)])
SMALL = settings(max_examples=40, deadline=None)


def _values(lo=-3.0, hi=3.0):
    return st.lists(st.floats(lo, hi), min_size=1, max_size=8)


def _pair(xs, dtype):
    """The same values as a torch tensor of ``dtype`` and as a float64 numpy array."""
    t = torch.tensor(xs, dtype=dtype)
    return t, t.double().numpy()


def _eps(dtype):
    return torch.finfo(dtype).eps


def _assert_close(ours, ref, atol):
    ours = ours.double().numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=atol)


# ----------------------------------------------------------------------------------------------
# projections and their inverses


@SMALL
@given(xs=_values(), beta=BETAS, levels=LEVELS, dtype=DTYPES)
def test_shifted_tanh_matches_maps(xs, beta, levels, dtype):
    x, xn = _pair(xs, dtype)
    ref = (maps.Tanh() if levels == (-1.0, 1.0) else maps.ShiftedTanh(levels)).project(xn, beta)
    # P' <= beta * max step / 2, and beta x is rounded to the dtype: error ~ eps (1 + beta |x|)
    span = levels[-1] - levels[0]
    atol = 8 * _eps(dtype) * span * (1 + beta * (np.abs(xn).max() + 1))
    _assert_close(tq.shifted_tanh(x, beta, levels), ref, atol)


@SMALL
@given(xs=_values(-0.999, 0.999), beta=st.floats(0.1, 50.0), dtype=DTYPES)
def test_tanh_inverse_matches_maps(xs, beta, dtype):
    w, wn = _pair(xs, dtype)
    ref = maps.Tanh().inverse(wn, beta)
    # d atanh / dw = 1 / (1 - w^2) amplifies the input's rounding
    atol = 8 * _eps(dtype) * (1 + np.abs(ref).max()) / (1 - np.abs(wn).max() ** 2) / beta
    _assert_close(tq.shifted_tanh_inverse(w, beta, (-1.0, 1.0)), ref, atol)


@SMALL
@given(xs=_values(-1.5, 1.5), beta=st.floats(0.5, 8.0), levels=LEVELS)
def test_multi_level_inverse_matches_maps(xs, beta, levels):
    if len(levels) == 2:
        levels = (-1.0, 0.0, 1.0)
    core = maps.ShiftedTanh(levels)
    w = core.project(np.asarray(xs), beta)
    w = np.clip(w, levels[0] + 1e-9, levels[-1] - 1e-9)  # off the float-flat ends
    ours = tq.shifted_tanh_inverse(torch.tensor(w, dtype=torch.float64), beta, levels).numpy()
    ref = core.inverse(w, beta)
    # compare through P: the inverse is ill-conditioned on the plateaus, P of it is not
    np.testing.assert_allclose(core.project(ours, beta), core.project(ref, beta), atol=1e-10)


@SMALL
@given(xs=_values(), beta=BETAS, levels=LEVELS, dtype=DTYPES)
def test_shifted_tanh_derivative_matches_finite_differences_of_maps(xs, beta, levels, dtype):
    x, xn = _pair(xs, dtype)
    core = maps.Tanh() if levels == (-1.0, 1.0) else maps.ShiftedTanh(levels)
    h = 1e-6 / beta
    fd = (core.project(xn + h, beta) - core.project(xn - h, beta)) / (2 * h)
    ours = tq.shifted_tanh_derivative(x, beta, levels).double().numpy()
    scale = beta * (levels[-1] - levels[0])
    np.testing.assert_allclose(ours, fd, rtol=1e-4, atol=1e-6 * scale + 1e-9 / h)


# ----------------------------------------------------------------------------------------------
# mirror-descent steps


@SMALL
@given(xs=_values(-0.99, 0.99), g=st.floats(-2, 2), eta=st.floats(1e-4, 0.5), beta=BETAS,
       dtype=DTYPES)  # fmt: skip
def test_tanh_md_step_matches_maps(xs, g, eta, beta, dtype):
    x, xn = _pair(xs, dtype)
    ref = maps.Tanh().md_step(xn, g, eta, beta)
    arg = np.abs(np.arctanh(xn)).max() + beta * eta * abs(g)
    atol = 8 * _eps(dtype) * (1 + arg) / (1 - np.abs(xn).max() ** 2)
    _assert_close(tq.tanh_md_step(x, torch.full_like(x, g), eta, beta), ref, atol)


@SMALL
@given(xs=_values(0.001, 0.999), g=st.floats(-2, 2), eta=st.floats(1e-4, 0.5), beta=BETAS,
       dtype=DTYPES)  # fmt: skip
def test_sigmoid_md_step_is_the_two_level_md_softmax_step(xs, g, eta, beta, dtype):
    """Levels (0, 1): u_1 = w, and Eq. 20 in the difference form is maps.Sigmoid's step."""
    u1, un = _pair(xs, dtype)
    ref = maps.Sigmoid().md_step(un, g, eta, beta)
    arg = np.abs(np.log(un / (1 - un))).max() + beta * eta * abs(g)
    atol = 8 * _eps(dtype) * (1 + arg) / (4 * (un * (1 - un)).min())
    u = torch.stack((1 - u1, u1))
    ours = tq.two_level_md_softmax_step(u, torch.full_like(u1, g), eta, beta, (0.0, 1.0))
    _assert_close(ours, ref, atol)


def _simplex(seed, n, d):
    rng = np.random.default_rng(seed)
    u = rng.dirichlet(np.ones(d), size=n)
    return np.clip(u, 1e-6, None) / np.clip(u, 1e-6, None).sum(-1, keepdims=True)


@SMALL
@given(seed=st.integers(0, 2**16), levels=LEVELS, eta=st.floats(1e-4, 0.5), beta=BETAS,
       dtype=DTYPES)  # fmt: skip
def test_md_softmax_step_matches_maps(seed, levels, eta, beta, dtype):
    d = len(levels)
    un = _simplex(seed, 5, d)
    gw = np.random.default_rng(seed + 1).normal(size=5)
    core = maps.Softmax(levels)
    gu = core.lift_gradient(gw)
    ref = core.md_step(un, gu, eta, beta)  # (N, d)
    u = torch.tensor(un.T, dtype=dtype)  # level axis first
    ours = tq.md_softmax_step(u, tq.lift_gradient(torch.tensor(gw, dtype=dtype), levels), eta,
                              beta)  # fmt: skip
    arg = np.abs(np.log(un)).max() + beta * eta * np.abs(gu).max()
    atol = 16 * _eps(dtype) * (1 + arg)
    _assert_close(ours.T, ref, atol)
    if d == 2:  # the closed form of the same step
        closed = tq.two_level_md_softmax_step(u, torch.tensor(gw, dtype=dtype), eta, beta,
                                              levels)  # fmt: skip
        _assert_close(closed, ref[:, 1], atol)


# ----------------------------------------------------------------------------------------------
# the softmax over the levels and its two-level forms


@SMALL
@given(seed=st.integers(0, 2**16), levels=LEVELS, beta=BETAS, dtype=DTYPES)
def test_softmax_projection_weights_lift_and_rounding_match_maps(seed, levels, beta, dtype):
    d = len(levels)
    rng = np.random.default_rng(seed)
    utn = rng.normal(size=(6, d))
    core = maps.Softmax(levels)
    ref = core.project(utn, beta)
    ut = torch.tensor(utn.T, dtype=dtype)
    u = tq.softmax_levels(ut, beta)
    atol = 8 * _eps(dtype) * (1 + beta * np.abs(utn).max())
    _assert_close(u.T, ref, atol)
    span = max(abs(q) for q in levels)
    _assert_close(tq.probabilities_to_weights(u, levels), core.weights(ref), atol * d * span)
    gw = rng.normal(size=6)
    _assert_close(tq.lift_gradient(torch.tensor(gw, dtype=dtype), levels).T,
                  core.lift_gradient(gw), 4 * _eps(dtype) * span * 4)  # fmt: skip
    # rounding: the level of the one-hot argmax (ties up) from the same probabilities
    un = u.T.double().numpy()
    un = un / un.sum(-1, keepdims=True)
    onehot = core.round(un)
    assert np.array_equal(tq.argmax_level(u, levels).double().numpy(), onehot @ np.array(levels))
    if d == 2:
        _assert_close(tq.two_level_probability(ut, beta), ref[:, 1], atol)
        _assert_close(tq.two_level_weights(ut, beta, levels), core.weights(ref), atol * span)


@SMALL
@given(xs=_values(), beta=BETAS, dtype=DTYPES)
def test_sigmoid_of_the_difference_is_maps_sigmoid(xs, beta, dtype):
    x, xn = _pair(xs, dtype)
    ut = torch.stack((torch.zeros_like(x), x))
    ref = maps.Sigmoid().project(xn, beta)
    _assert_close(tq.two_level_probability(ut, beta), ref, 8 * _eps(dtype) * (1 + beta * 3))


@SMALL
@given(seed=st.integers(0, 2**16), levels=TWO_LEVELS, beta=BETAS)
def test_two_level_closed_forms_equal_the_general_softmax_forms(seed, levels, beta):
    """PMF's Jacobian and the MD-softmax step in sigmoid-of-difference form equal the general
    d-level forms (torch.softmax over the levels, autograd), float64."""
    rng = np.random.default_rng(seed)
    ut = torch.tensor(rng.normal(size=(2, 7)) / math.sqrt(beta), dtype=torch.float64)
    g = torch.tensor(rng.normal(size=7), dtype=torch.float64)
    leaf = ut.clone().requires_grad_(True)
    w = (torch.softmax(beta * leaf, dim=0) * torch.tensor(levels, dtype=torch.float64)[:, None])
    (w.sum(0) * g).sum().backward()
    closed = tq.two_level_softmax_vjp(ut, beta, g, levels)
    torch.testing.assert_close(closed, leaf.grad, rtol=1e-10, atol=1e-12 * beta)
    general = tq.softmax_vjp(tq.softmax_levels(ut, beta), beta, tq.lift_gradient(g, levels))
    torch.testing.assert_close(closed, general, rtol=1e-10, atol=1e-12 * beta)
    u = tq.softmax_levels(ut, beta)
    eta = 0.01
    step = tq.md_softmax_step(u, tq.lift_gradient(g, levels), eta, beta)
    closed_step = tq.two_level_md_softmax_step(u, g, eta, beta, levels)
    torch.testing.assert_close(closed_step, step[1], rtol=1e-9, atol=1e-12)
    wt = tq.two_level_weights(ut, beta, levels)
    torch.testing.assert_close(wt, tq.probabilities_to_weights(u, levels), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# nearest level, proximal maps, ProxConnect quantizers, BinaryConnect's gate


@SMALL
@given(xs=_values(-4, 4), levels=LEVELS, dtype=DTYPES)
def test_nearest_level_matches_toy_and_maps_including_ties(xs, levels, dtype):
    mids = [(a + b) / 2 for a, b in zip(levels, levels[1:], strict=False)]
    xs = xs + mids  # the midpoints themselves: ties go to the upper level
    x, xn = _pair(xs, dtype)
    ours = tq.nearest_level(x, levels).double().numpy()
    assert np.array_equal(ours, toy.nearest_level(xn, levels))
    assert np.array_equal(ours, maps.ShiftedTanh(levels).round(xn))


@SMALL
@given(xs=_values(-3, 3), tau=st.floats(0, 2), levels=LEVELS, form=st.sampled_from(["l1", "l2"]),
       dtype=DTYPES)  # fmt: skip
def test_pq_prox_matches_toy(xs, tau, levels, form, dtype):
    """One convention: R_2 = (x - q)^2, prox (x + 2 tau q) / (1 + 2 tau); clamping is optional."""
    x, xn = _pair(xs, dtype)
    if tau == 0:
        tau = 1e-3
    ref = toy.prox_w(xn, tau, levels, form)
    atol = 8 * _eps(dtype) * (1 + np.abs(xn).max() + tau)
    _assert_close(tq.pq_prox(x, tau, levels, form, clamp=False), ref, atol)
    clamped = tq.pq_prox(x, tau, levels, form)  # the default: clamp to [q_0, q_{d-1}]
    _assert_close(clamped, np.clip(ref, levels[0], levels[-1]), atol)


@SMALL
@given(xs=_values(-4, 4), beta=st.floats(1.0, 1e4), levels=LEVELS, dtype=DTYPES)
def test_proxconnect_quantizers_match_prox(xs, beta, levels, dtype):
    x, xn = _pair(xs, dtype)
    atol = 8 * _eps(dtype) * (1 + beta) * (1 + np.abs(xn).max())
    _assert_close(tq.piecewise_linear(x, beta, levels),
                  prox.PiecewiseLinearQuantizer(levels)(xn, beta), atol)  # fmt: skip
    _assert_close(tq.binary_relax(x, beta, levels),
                  prox.BinaryRelaxQuantizer(levels)(xn, beta), atol)  # fmt: skip
    assert np.array_equal(tq.nearest_level(x, levels).double().numpy(),
                          prox.HardQuantizer(levels)(xn, beta))  # fmt: skip
    if levels in ((-1.0, 1.0), (-1.0, 0.0, 1.0)):
        ref = prox.TanhQuantizer(levels)(xn, beta)
        _assert_close(tq.shifted_tanh(x, beta, levels), ref, atol * (levels[-1] - levels[0]))


@SMALL
@given(xs=_values(-4, 4), levels=LEVELS)
def test_bc_gate_is_the_hull_of_the_levels(xs, levels):
    xs = xs + [levels[0], levels[-1]]  # the ends of the hull are inside
    x = torch.tensor(xs, dtype=torch.float64)
    expected = [levels[0] <= v <= levels[-1] for v in xs]
    assert tq.bc_inside(x, levels).tolist() == expected
    if levels[0] == -levels[-1]:  # symmetric levels: toy's |x| <= max |q| is the same gate
        assert expected == [abs(v) <= max(abs(q) for q in levels) for v in xs]


def test_l2_prox_value_from_the_issue():
    """The two copies used to disagree: prox of 0.3 at strength 0.5 toward 1 is 0.65 (x - q)^2."""
    x = torch.tensor([0.3], dtype=torch.float64)
    assert tq.pq_prox(x, 0.5, (-1.0, 1.0), "l2", clamp=False).item() == pytest.approx(0.65)
    assert toy.prox_w(np.array([0.3]), 0.5, (-1.0, 1.0), "l2")[0] == pytest.approx(0.65)
