"""The torch formulas the optimizer calls against the numpy core, on random inputs.

The projections' own methods (``__call__``, ``write``, ``vjp`` read from the weight,
``inverse_into`` and ``mirror_finish`` with the dual rescaled to the next beta), BinaryConnect's
gate as the route calls it, the proximal map, nearest level and rounding, the shifted tanh and the
softmax over the levels, in float32 and float64 and for beta up to 1e4. The numpy side computes
in float64 from the same (possibly float32) inputs, so the tolerance is the torch dtype's
rounding error times the conditioning of the formula. ``tests/test_registry_matrix.py`` runs the
whole optimizer step against the numpy core.
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
# mirror-descent steps, as the optimizer takes them: the kept dual x~ = P_beta^{-1}(x), the base
# step x~ -= eta g, then the projection's mirror_finish (new weights, dual rescaled to beta_next)


GROWTH = st.floats(1.0, 2.0)


@SMALL
@given(xs=_values(-0.99, 0.99), g=st.floats(-2, 2), eta=st.floats(1e-4, 0.5), beta=BETAS,
       growth=GROWTH, dtype=DTYPES)  # fmt: skip
def test_tanh_mirror_step_matches_maps(xs, g, eta, beta, growth, dtype):
    x, xn = _pair(xs, dtype)
    proj = tq.Tanh().bind((-1.0, 1.0))
    dual = torch.empty_like(x)
    proj.inverse_into(dual, x, beta)
    dual -= eta * g
    out = torch.empty_like(x)
    proj.mirror_finish({"latent": dual}, out, beta, beta * growth)
    ref = maps.Tanh().md_step(xn, g, eta, beta)
    arg = np.abs(np.arctanh(xn)).max() + beta * eta * abs(g)
    atol = 8 * _eps(dtype) * (1 + arg) / (1 - np.abs(xn).max() ** 2)
    _assert_close(out, ref, atol)
    # The kept dual names the same weights at the next beta (Eq. 13 at beta_next).
    _assert_close(proj(dual, beta * growth), ref, atol)


@SMALL
@given(seed=st.integers(0, 2**16), levels=LEVELS, eta=st.floats(1e-4, 0.5), beta=BETAS,
       growth=GROWTH, dtype=DTYPES, one_plane=st.booleans())  # fmt: skip
def test_softmax_mirror_step_matches_maps(seed, levels, eta, beta, growth, dtype, one_plane):
    d = len(levels)
    un = _simplex(seed, 5, d)
    gw = np.random.default_rng(seed + 1).normal(size=5)
    core = maps.Softmax(levels)
    gu = core.lift_gradient(gw)
    ref = core.weights(core.md_step(un, gu, eta, beta))
    proj = tq.Softmax().bind(levels, one_plane=one_plane)
    u = torch.tensor(un.T, dtype=dtype)  # level axis first
    g = torch.tensor(gw, dtype=dtype)
    latent = torch.empty_like(u)
    proj.inverse_into(latent, u, beta)
    latent -= eta * tq.lift_gradient(g, levels)
    out = torch.empty_like(g)
    proj.mirror_finish({"latent": latent}, out, beta, beta * growth)
    proj.sync(latent)  # as the optimizer does after the step
    arg = np.abs(np.log(un)).max() + beta * eta * np.abs(gu).max()
    atol = 16 * _eps(dtype) * (1 + arg) * max(abs(q) for q in levels)
    _assert_close(out, ref, atol)
    # The dual was rescaled to the next beta: it projects to the same weights there.
    _assert_close(proj.weights(proj(latent, beta * growth)), ref, atol)


def _simplex(seed, n, d):
    rng = np.random.default_rng(seed)
    u = rng.dirichlet(np.ones(d), size=n)
    return np.clip(u, 1e-6, None) / np.clip(u, 1e-6, None).sum(-1, keepdims=True)


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
    proj = tq.Softmax().bind(levels)
    u = proj(ut, beta)  # the form the optimizer calls (two levels: sigmoids of the difference)
    atol = 8 * _eps(dtype) * (1 + beta * np.abs(utn).max())
    _assert_close(u.T, ref, atol)
    _assert_close(tq.softmax_levels(ut, beta).T, ref, atol)
    span = max(abs(q) for q in levels)
    _assert_close(proj.weights(u), core.weights(ref), atol * d * span)
    out = torch.empty(6, dtype=dtype)
    proj.write(out, ut, beta)
    _assert_close(out, core.weights(ref), atol * d * span)
    gw = rng.normal(size=6)
    _assert_close(tq.lift_gradient(torch.tensor(gw, dtype=dtype), levels).T,
                  core.lift_gradient(gw), 4 * _eps(dtype) * span * 4)  # fmt: skip
    # rounding: the level of the one-hot argmax (ties up) from the same probabilities
    un = u.T.double().numpy()
    un = un / un.sum(-1, keepdims=True)
    onehot = core.round(un)
    assert np.array_equal(proj.round(u).double().numpy(), onehot @ np.array(levels))


@SMALL
@given(xs=_values(), beta=BETAS, dtype=DTYPES)
def test_sigmoid_of_the_difference_is_maps_sigmoid(xs, beta, dtype):
    x, xn = _pair(xs, dtype)
    ut = torch.stack((torch.zeros_like(x), x))
    ref = maps.Sigmoid().project(xn, beta)
    proj = tq.Softmax().bind((0.0, 1.0))
    _assert_close(proj(ut, beta)[1], ref, 8 * _eps(dtype) * (1 + beta * 3))


@SMALL
@given(seed=st.integers(0, 2**16), levels=TWO_LEVELS, beta=BETAS)
def test_pmf_vjp_as_the_optimizer_calls_it_is_autograd_through_the_softmax(seed, levels, beta):
    """PMF's gradient read from the weight the model holds (the chain route's fast path) and the
    general d-level form equal autograd through torch.softmax, float64."""
    rng = np.random.default_rng(seed)
    ut = torch.tensor(rng.normal(size=(2, 7)) / math.sqrt(beta), dtype=torch.float64)
    g = torch.tensor(rng.normal(size=7), dtype=torch.float64)
    leaf = ut.clone().requires_grad_(True)
    w = (torch.softmax(beta * leaf, dim=0) * torch.tensor(levels, dtype=torch.float64)[:, None])
    (w.sum(0) * g).sum().backward()
    proj = tq.Softmax().bind(levels)
    weight = torch.empty(7, dtype=torch.float64)
    proj.write(weight, ut, beta)
    fast = proj.vjp(ut, beta, g, torch.empty_like(ut), weight)
    torch.testing.assert_close(fast, leaf.grad, rtol=1e-9, atol=1e-11 * beta)
    torch.testing.assert_close(proj.vjp(ut, beta, g), leaf.grad, rtol=1e-10, atol=1e-12 * beta)


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
    # the gate BinaryConnect's route calls, on the float32 and float64 paths
    for dtype in (torch.float32, torch.float64):
        xd = x.to(dtype)
        g = torch.ones_like(xd)
        assert tq.bc_gate(g, xd, levels, torch.empty_like(xd)).bool().tolist() == [
            levels[0] <= v <= levels[-1] for v in xd.tolist()
        ]
    if levels[0] == -levels[-1]:  # symmetric levels: toy's |x| <= max |q| is the same gate
        assert expected == [abs(v) <= max(abs(q) for q in levels) for v in xs]


def test_l2_prox_value_from_the_issue():
    """The two copies used to disagree: prox of 0.3 at strength 0.5 toward 1 is 0.65 (x - q)^2."""
    x = torch.tensor([0.3], dtype=torch.float64)
    assert tq.pq_prox(x, 0.5, (-1.0, 1.0), "l2", clamp=False).item() == pytest.approx(0.65)
    assert toy.prox_w(np.array([0.3]), 0.5, (-1.0, 1.0), "l2")[0] == pytest.approx(0.65)
