"""Each method's update against an independent reference, step for step, in float64.

With ``base="sgd"`` and ``lr=eta`` the base optimizer's direction is the gradient itself (d = g),
so each method's route can be compared with the paper's formula written out by hand: Eq. 15
(MD-tanh), Eq. 20 (MD-softmax), Eq. 23 (the "-s" variants, the STE), the chain rule (GD-tanh, PMF,
checked with autograd), BinaryConnect, ProxQuant's proximal step (against a brute-force argmin) and
ProxConnect. The annealing schedule is on (beta changes every two steps) so the tests also pin down
which beta each step uses.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq
from torch import nn

from mdq_teach.nn import make_optimizer
from mdq_teach.nn.quantize import (
    binary_relax,
    nearest_level,
    piecewise_linear,
    pq_prox,
    shifted_tanh,
    shifted_tanh_derivative,
    shifted_tanh_inverse,
)

TWO_LEVELS = [(-1, 1), (0, 1), (-0.5, 2)]

torch.set_num_threads(1)

ETA = 0.05
STEPS = 7
SCHEDULE = dict(beta_init=1.5, beta_scale=1.3, beta_scale_interval=2)
D64 = torch.float64


def beta_at(t):
    return 1.5 * 1.3 ** (t // 2)


def _problem(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(30, n, generator=g, dtype=D64)
    b = torch.randn(30, generator=g, dtype=D64)
    w0 = 0.8 * torch.randn(n, generator=g, dtype=D64)
    return a, b, w0


def _loss(a, b, w):
    return ((torch.tanh(a @ w) - b) ** 2).mean()  # smooth and nonconvex, like a network


def _grad(a, b, w):
    w = w.detach().clone().requires_grad_(True)
    _loss(a, b, w).backward()
    return w.grad


def _run(method, steps=STEPS, seed=0, w0=None, **kw):
    """Weights in the model before the first step and after each step, and the optimizer."""
    a, b, w_init = _problem(seed=seed)
    p = nn.Parameter((w_init if w0 is None else w0).clone())
    opt = make_optimizer([p], method, **{"lr": ETA, "base": "sgd", **SCHEDULE, **kw})
    traj = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        _loss(a, b, p).backward()
        opt.step()
        traj.append(p.detach().clone())
    return traj, opt


def _start(w0, levels):
    """Where the latent starts (mdq_teach.nn.latent_init, default "auto"), written out here:
    the float weights for two levels -a, a (the paper); for any other levels the weights mapped
    onto the levels' scale, c + w0 s_Q / s_w (c the midpoint of the levels' range, s_Q and s_w
    the population standard deviations of the levels and of the tensor)."""
    if len(levels) == 2 and levels[0] == -levels[1]:
        return w0.clone()
    q = np.asarray(levels, dtype=np.float64)
    scale = q.std() / np.std(w0.numpy())
    return (levels[0] + levels[-1]) / 2 + w0 * scale


def _param(opt):
    return opt.param_groups[0]["params"][0]


def _aux(opt):
    """The latent the base optimizer moves; u-space latents come back as (N, d)."""
    latent = opt.state[_param(opt)]["latent"]
    return latent if latent.dim() == 1 else latent.T


def _primal(opt):
    return opt.primal(_param(opt)).T


def _close(xs, ys, tol=1e-12):
    for x, y in zip(xs, ys, strict=True):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------------
# w-space tanh methods


@pytest.mark.parametrize("levels", [(-1, 1), (-1, 0, 1)])
@pytest.mark.fidelity("md:eq23")
def test_md_tanh_s_applies_the_unmodified_gradient_to_the_aux_variable(levels):
    """Eq. 23: x~ <- x~ - eta g, with g taken at w = P_beta(x~) (the STE)."""
    a, b, w0 = _problem()
    traj, opt = _run("md-tanh-s", levels=levels)
    x = _start(w0, levels)  # the (scaled) float initial weight is the initial auxiliary variable
    ref = [shifted_tanh(x, beta_at(0), levels)]
    for t in range(STEPS):
        x = x - ETA * _grad(a, b, ref[-1])
        ref.append(shifted_tanh(x, beta_at(t + 1), levels))
    _close(traj, ref)
    _close([_aux(opt)], [x])
    if levels == (-1, 1):
        _close([ref[0]], [torch.tanh(beta_at(0) * w0)])  # Eq. 12


def test_gd_tanh_applies_beta_one_minus_w_squared_times_the_gradient():
    a, b, w0 = _problem()
    traj, opt = _run("gd-tanh")
    x = w0.clone()
    for t in range(STEPS):
        w = traj[t]
        x = x - ETA * beta_at(t) * (1 - w * w) * _grad(a, b, w)
        _close([traj[t + 1]], [torch.tanh(beta_at(t + 1) * x)])
    _close([_aux(opt)], [x])


@pytest.mark.parametrize("levels", [(-1, 1), (-1, 0, 1), (0, 1, 3)])
@pytest.mark.fidelity("md:eq1")
def test_gd_tanh_is_gradient_descent_on_f_of_p(levels):
    """The chain-rule route equals autograd through the (shifted) tanh projection."""
    a, b, w0 = _problem()
    traj, _ = _run("gd-tanh", levels=levels)
    x = _start(w0, levels)
    for t in range(STEPS):
        xr = x.clone().requires_grad_(True)
        _loss(a, b, shifted_tanh(xr, beta_at(t), levels)).backward()
        x = x - ETA * xr.grad
        _close([traj[t + 1]], [shifted_tanh(x, beta_at(t + 1), levels)])


@pytest.mark.fidelity("md:eq15")
def test_md_tanh_is_eq_15_and_its_atanh_form():
    """Eq. 15 written literally; beta changes do not move w (the primal is the state)."""
    a, b, w0 = _problem()
    traj, _ = _run("md-tanh")
    w = torch.tanh(beta_at(0) * w0)  # Algorithm 1, line 2
    _close([traj[0]], [w])
    for t in range(STEPS):
        g = _grad(a, b, w)
        r = (1 + w) / (1 - w) * torch.exp(-2 * beta_at(t) * ETA * g)
        w_eq15 = (r - 1) / (r + 1)
        w_atanh = torch.tanh(torch.atanh(w) - beta_at(t) * ETA * g)
        _close([w_eq15], [w_atanh])
        _close([traj[t + 1]], [w_eq15], tol=1e-10)
        w = traj[t + 1]


def _eq21(x, beta):
    return 0.5 * (math.tanh(beta * (x + 0.5)) + math.tanh(beta * (x - 0.5)))


def test_md_tanh_ternary_steps_through_the_inverse_of_the_shifted_tanh():
    """x~ = P^-1(w) found by scipy's root finder on Eq. 21 written out, not by the library."""
    levels = (-1, 0, 1)
    a, b, w0 = _problem()
    traj, _ = _run("md-tanh", levels=levels)
    for t in range(STEPS):
        beta = beta_at(t)
        x = torch.tensor(
            [brentq(lambda s, w=w, b=beta: _eq21(s, b) - w, -60.0, 60.0, xtol=1e-15, rtol=1e-15)
             for w in traj[t].tolist()],
            dtype=D64,
        )  # fmt: skip
        moved = (x - ETA * _grad(a, b, traj[t])).tolist()
        expected = torch.tensor([_eq21(s, beta) for s in moved], dtype=D64)
        _close([traj[t + 1]], [expected], tol=1e-10)


def test_md_tanh_stays_finite_when_w_saturates_in_float32():
    """The literal Eq. 15 gives 0/0 once w rounds to 1; the clamped atanh form does not."""
    p = nn.Parameter(torch.tensor([3.0, -3.0, 0.1]))
    opt = make_optimizer([p], "md-tanh", lr=0.1, base="sgd", beta_init=50.0)
    # saturated: the dual is capped at atanh(1 - eps), so the weight is +-1 within an ulp
    assert p[0].item() >= 1 - 1.2e-7 and p[1].item() <= -1 + 1.2e-7
    for _ in range(5):
        p.grad = torch.tensor([1.0, -1.0, 0.0])  # pushes both saturated weights inward
        opt.step()
        assert torch.isfinite(p).all() and p.abs().max() <= 1
    assert p[0].item() < 1.0 and p[1].item() > -1.0


# ----------------------------------------------------------------------------------------------
# u-space methods


def _q(levels):
    return torch.tensor(levels, dtype=D64)


def _u_init(w0, levels):
    """u~_k = q_k w0 - q_k^2 / 2; two symmetric levels drop the common constant (softmax ignores
    it), which makes the two planes antisymmetric."""
    q = _q(levels)
    if len(levels) == 2 and levels[0] == -levels[1]:
        return w0[:, None] * q
    return w0[:, None] * q - q * q / 2


def _dual(logu, levels):
    """The documented representative of the dual times beta: log u (d levels), the log-odds in
    plane 1 (two levels), half of them as (-v, v) (two symmetric levels)."""
    if len(levels) != 2:
        return logu
    if levels[0] == -levels[1]:
        return logu - logu.mean(-1, keepdim=True)
    return logu - logu[:, :1]


@pytest.mark.parametrize("levels", [(-1, 0, 1), (-2, 0, 1, 5), *TWO_LEVELS])
@pytest.mark.fidelity("md:eq20")
def test_md_softmax_is_exponentiated_gradient_eq_20(levels):
    """The general softmax form of Eq. 20; two levels run the sigmoid-of-difference form."""
    a, b, w0 = _problem()
    traj, opt = _run("md-softmax", levels=levels)
    q = _q(levels)
    u = torch.softmax(beta_at(0) * _u_init(_start(w0, levels), levels), -1)
    for t in range(STEPS):
        g_u = _grad(a, b, u @ q)[:, None] * q  # d f / d u_lambda = g q_lambda
        num = u * torch.exp(-beta_at(t) * ETA * g_u)
        u = num / num.sum(-1, keepdim=True)
        _close([traj[t + 1]], [u @ q], tol=1e-10)
    _close([_primal(opt)], [u], tol=1e-10)


@pytest.mark.parametrize("levels", [(-1, 0, 1), *TWO_LEVELS])
def test_md_softmax_weight_decay_acts_on_the_dual_log_u_over_beta(levels):
    """Eq. 20 with weight decay, beta changing at every step, in float64 from the primal alone.

    The documented dual is x~ = log(u) / beta (d levels), (0, log(u_1 / u_0) / beta) (two
    levels) or its antisymmetric half (two symmetric levels), taken afresh from the
    probabilities at each step's beta; SGD's weight decay adds wd x~ to the gradient g q. The
    optimizer keeps its dual between steps instead and rescales it when beta changes: the
    iterates must be the same.
    """
    a, b, w0 = _problem()
    wd, steps = 0.3, 6
    p = nn.Parameter(w0.clone())
    opt = make_optimizer([p], "md-softmax", lr=ETA, base="sgd", levels=levels, weight_decay=wd,
                         beta_init=1.5, beta_scale=1.3)  # fmt: skip
    q = _q(levels)
    u = torch.softmax(1.5 * _u_init(_start(w0, levels), levels), -1)
    for t in range(steps):
        beta = 1.5 * 1.3**t
        opt.zero_grad()
        _loss(a, b, p).backward()
        opt.step()
        logu = torch.log(u)
        dual = _dual(logu, levels) / beta
        dual = dual - ETA * (_grad(a, b, u @ q)[:, None] * q + wd * dual)
        u = torch.softmax(beta * dual, -1)
        _close([p.detach()], [u @ q], tol=1e-10)
        _close([_primal(opt)], [u], tol=1e-10)
        # what the next step's weight decay will act on: the dual of u at the next beta
        logu = torch.log(u)
        _close([_aux(opt)], [_dual(logu, levels) / (1.5 * 1.3 ** (t + 1))], tol=1e-10)


def test_md_softmax_skipped_parameter_keeps_its_weight_across_beta_changes():
    """A parameter without a gradient keeps its probabilities while beta grows; its next step
    is Eq. 20 from them at the beta of that step."""
    a, b, w0 = _problem()
    p = nn.Parameter(w0.clone())
    opt = make_optimizer([p], "md-softmax", lr=ETA, base="sgd", beta_init=1.5, beta_scale=2.0)
    w_before = p.detach().clone()
    u = _primal(opt).clone()
    for _ in range(3):
        p.grad = None
        opt.step()
    assert torch.equal(p.detach(), w_before) and torch.equal(_primal(opt), u)
    opt.zero_grad()
    _loss(a, b, p).backward()
    opt.step()
    q = _q((-1, 1))
    num = u * torch.exp(-1.5 * 2.0**3 * ETA * _grad(a, b, w_before)[:, None] * q)
    _close([p.detach()], [(num / num.sum(-1, keepdim=True)) @ q], tol=1e-10)


def test_md_softmax_caps_the_dual_where_a_probability_underflows():
    """Float32: once u_0 underflows, the log-odds are capped at -log(smallest normal), as the
    logarithm of the clamped probability caps them, so the weight turns back as soon as the
    gradient does."""
    p = nn.Parameter(torch.tensor([0.0]))
    opt = make_optimizer([p], "md-softmax", lr=1.0, base="sgd", beta_init=1.0)
    for _ in range(100):  # drive w to +1 far beyond the float32 range of u_0
        p.grad = torch.tensor([-1.0])
        opt.step()
    latent = opt.state[p]["latent"]
    cap = -math.log(torch.finfo(torch.float32).tiny)
    # levels (-1, 1): the log-odds sit in the planes as (-cap / 2, cap / 2)
    assert p.item() == 1.0 and latent[0].item() == -latent[1].item()
    torch.testing.assert_close(latent[1, 0], torch.tensor(cap / 2), rtol=1e-6, atol=0)
    p.grad = torch.tensor([50.0])  # a log-odds move of -100 overshoots the cap
    opt.step()
    assert p.item() < -0.99


def test_two_level_md_softmax_equals_md_tanh():
    """With levels (-1, 1), u = ((1 - w) / 2, (1 + w) / 2) maps one method's state onto the other's.

    Eq. 20 multiplies u_1 / u_0 = (1 + w) / (1 - w) by exp(-beta eta (g - (-g))), which is Eq. 15
    at the same beta and eta. The "beta / 2" of the logit picture is the same fact read on the
    difference v = u~_1 - u~_0: w = tanh((beta / 2) v), and v moves by 2 eta g per step.
    """
    soft, opt_s = _run("md-softmax")
    tanh, _ = _run("md-tanh")
    _close(soft, tanh, tol=1e-12)
    u = _primal(opt_s)
    w = tanh[-1]
    _close([u], [torch.stack([(1 - w) / 2, (1 + w) / 2], -1)])

    soft_s, opt_ss = _run("md-softmax-s")
    tanh_s, opt_ts = _run("md-tanh-s")
    _close(soft_s, tanh_s)
    v = _aux(opt_ss)[:, 1] - _aux(opt_ss)[:, 0]
    _close([v], [2 * _aux(opt_ts)])
    _close([torch.tanh(opt_ss.beta / 2 * v)], [soft_s[-1]])


@pytest.mark.parametrize("levels", [(-1, 0, 1), (0, 1, 3), *TWO_LEVELS])
def test_md_softmax_s_moves_u_tilde_by_g_q(levels):
    a, b, w0 = _problem()
    traj, opt = _run("md-softmax-s", levels=levels)
    q = _q(levels)
    ut = _u_init(_start(w0, levels), levels)
    for t in range(STEPS):
        w = torch.softmax(beta_at(t) * ut, -1) @ q
        ut = ut - ETA * _grad(a, b, w)[:, None] * q
        _close([traj[t + 1]], [torch.softmax(beta_at(t + 1) * ut, -1) @ q])
    _close([_aux(opt)], [ut])


@pytest.mark.parametrize("levels", [(-1, 0, 1), *TWO_LEVELS])
def test_pmf_is_gradient_descent_through_the_softmax(levels):
    """Autograd through torch.softmax over an (N, d) layout; two levels run the closed form."""
    a, b, w0 = _problem()
    traj, _ = _run("pmf", levels=levels)
    q = _q(levels)
    ut = _u_init(_start(w0, levels), levels)
    for t in range(STEPS):
        leaf = ut.clone().requires_grad_(True)
        _loss(a, b, torch.softmax(beta_at(t) * leaf, -1) @ q).backward()
        ut = ut - ETA * leaf.grad
        _close([traj[t + 1]], [torch.softmax(beta_at(t + 1) * ut, -1) @ q])


# ----------------------------------------------------------------------------------------------
# BinaryConnect, ProxConnect, ProxQuant


def test_bc_cancels_the_gradient_outside_the_hull_and_takes_the_sign():
    a, b, w0 = _problem()
    w0 = 2.5 * w0  # some stored weights start outside [-1, 1]
    traj, opt = _run("bc", w0=w0)
    x = w0.clone()
    assert (x.abs() > 1).any() and (x.abs() <= 1).any()
    for t in range(STEPS):
        g = _grad(a, b, traj[t])
        x = x - ETA * g * (x.abs() <= 1)
        sign = torch.where(x >= 0, 1.0, -1.0).to(D64)
        assert torch.equal(traj[t + 1], sign)
    _close([_aux(opt)], [x])


@pytest.mark.fidelity("pc:a")
def test_proxconnect_hard_equals_bc_without_gradient_cancellation():
    _, _, w0 = _problem()
    pc, opt_pc = _run("proxconnect", quantizer="hard", w0=2.5 * w0)
    bc, opt_bc = _run("bc", bc_clip_grad=False, w0=2.5 * w0)
    for x, y in zip(pc, bc, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(_aux(opt_pc), _aux(opt_bc))
    _, opt_clipped = _run("bc", w0=2.5 * w0)  # the cancellation is what tells them apart
    assert not torch.equal(_aux(opt_clipped), _aux(opt_bc))


@pytest.mark.parametrize("levels", [(-1, 1), (-1, 0, 1)])
@pytest.mark.fidelity("pc:a")
def test_proxconnect_tanh_equals_md_tanh_s(levels):
    pc, opt_pc = _run("proxconnect", quantizer="tanh", levels=levels)
    md, opt_md = _run("md-tanh-s", levels=levels)
    for x, y in zip(pc, md, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(_aux(opt_pc), _aux(opt_md))


def _linear_scalar(theta, beta, levels):
    if theta <= levels[0]:
        return levels[0]
    if theta >= levels[-1]:
        return levels[-1]
    i = max(k for k in range(len(levels) - 1) if levels[k] <= theta)
    lo, hi = levels[i], levels[i + 1]
    m = (lo + hi) / 2
    return min(max(m + beta * (theta - m), lo), hi)


def _nearest_scalar(theta, levels):
    best = min(levels, key=lambda q: (abs(theta - q), -q))  # ties to the upper level
    return best


def _relax_scalar(theta, beta, levels):
    return (theta + beta * _nearest_scalar(theta, levels)) / (1 + beta)


@pytest.mark.parametrize(
    "quantizer,scalar", [("linear", _linear_scalar), ("binaryrelax", _relax_scalar)]
)
@pytest.mark.parametrize("levels", [(-1, 1), (-1, 0, 1)])
def test_proxconnect_steps_theta_and_applies_its_quantizer(quantizer, scalar, levels):
    a, b, w0 = _problem()
    traj, _ = _run("proxconnect", quantizer=quantizer, levels=levels)
    theta = _start(w0, levels)
    for t in range(STEPS):
        theta = theta - ETA * _grad(a, b, traj[t])
        expected = [scalar(v, beta_at(t + 1), levels) for v in theta.tolist()]
        _close([traj[t + 1]], [torch.tensor(expected, dtype=D64)])


def _brute_prox(x, strength, levels, reg):
    """argmin over a fine grid of 1/2 (z - x)^2 + strength R(z), R written independently."""
    z = np.linspace(levels[0] - 3, levels[-1] + 3, 200_001)
    dist = np.min(np.abs(z[:, None] - np.asarray(levels)[None, :]), axis=1)
    r = dist if reg == "l1" else dist**2
    objective = 0.5 * (z - x) ** 2 + strength * r
    return objective.min()


def _objective(z, x, strength, levels, reg):
    dist = min(abs(z - q) for q in levels)
    return 0.5 * (z - x) ** 2 + strength * (dist if reg == "l1" else dist**2)


@given(
    x=st.floats(-3, 3),
    strength=st.floats(0, 2),
    reg=st.sampled_from(["l1", "l2"]),
    levels=st.sampled_from([(-1.0, 1.0), (-1.0, 0.0, 1.0), (-0.5, 0.25, 2.0)]),
)
def test_pq_prox_is_the_global_minimiser_of_its_objective(x, strength, levels, reg):
    z = pq_prox(torch.tensor([x], dtype=D64), strength, levels, reg, clamp=False).item()
    ours = _objective(z, x, strength, levels, reg)
    assert ours <= _brute_prox(x, strength, levels, reg) + 1e-12


@pytest.mark.fidelity("md:eq24")
@pytest.mark.parametrize("clamp", [True, False])
def test_pq_step_is_a_gradient_step_then_the_prox_with_linearly_growing_lambda(clamp):
    """L2 is (x - q)^2, so its prox is (y + 2 s q) / (1 + 2 s); the clamp to [-1, 1] is the
    released code's and the default."""
    levels = (-1, 0, 1)
    a, b, w0 = _problem()
    # mapped onto the levels' scale (std sqrt(2/3)), some weights start outside [-1, 1], so the
    # clamp matters
    x0 = _start(w0, levels)
    assert (x0.abs() > 1).any()
    for reg in ("l1", "l2"):
        traj, _ = _run("pq", w0=w0, levels=levels, pq_reg=reg, pq_lambda=0.7, pq_clamp=clamp)
        x = x0.clone()
        _close([traj[0]], [x])  # ProxQuant starts from the (scaled) float weights
        clamped = False
        for t in range(STEPS):
            y = x - ETA * _grad(a, b, x)
            strength = ETA * 0.7 * (t + 1)
            q = torch.tensor([min(levels, key=lambda lv, v=v: (abs(v - lv), -lv)) for v in
                              y.tolist()], dtype=D64)  # fmt: skip
            if reg == "l1":
                x = q + torch.sign(y - q) * ((y - q).abs() - strength).clamp_min(0)
            else:
                x = (y + 2 * strength * q) / (1 + 2 * strength)
            if clamp:
                clamped |= bool((x.abs() > 1).any())
                x = x.clamp(-1, 1)
            _close([traj[t + 1]], [x])
        assert clamped == clamp or not clamp


# ----------------------------------------------------------------------------------------------
# Adam as the base optimizer


@pytest.mark.fidelity("md:alg2")
def test_md_tanh_s_with_adam_matches_a_hand_written_reference():
    a, b, w0 = _problem()
    traj, _ = _run("md-tanh-s", base="adam", lr=0.01, betas=(0.8, 0.99))
    x = nn.Parameter(w0.clone())
    ref_opt = torch.optim.Adam([x], lr=0.01, betas=(0.8, 0.99))
    for t in range(STEPS):
        w = torch.tanh(beta_at(t) * x.detach())
        x.grad = _grad(a, b, w)
        ref_opt.step()
        _close([traj[t + 1]], [torch.tanh(beta_at(t + 1) * x.detach())])


@pytest.mark.fidelity("md:alg1")
def test_md_tanh_with_adam_uses_adams_direction_in_eq_15():
    """MD-tanh with Adam: w <- tanh(atanh(w) - beta eta d), d Adam's direction from g."""
    a, b, w0 = _problem()
    traj, _ = _run("md-tanh", base="adam", lr=0.01)
    z = nn.Parameter(torch.zeros_like(w0))  # only Adam's displacement of z is used
    ref_opt = torch.optim.Adam([z], lr=0.01)
    for t in range(STEPS):
        before = z.detach().clone()
        z.grad = _grad(a, b, traj[t])
        ref_opt.step()
        step = z.detach() - before  # = -eta d
        expected = torch.tanh(torch.atanh(traj[t]) + beta_at(t) * step)
        _close([traj[t + 1]], [expected], tol=1e-10)


# ----------------------------------------------------------------------------------------------
# the projections themselves


@given(x=st.floats(-4, 4), beta=st.floats(0.2, 8))
@pytest.mark.fidelity("md:eq21")
def test_shifted_tanh_is_eq_21_for_ternary_and_tanh_for_binary(x, beta):
    t = torch.tensor([x], dtype=D64)
    eq21 = 0.5 * (math.tanh(beta * (x + 0.5)) + math.tanh(beta * (x - 0.5)))
    assert shifted_tanh(t, beta, (-1.0, 0.0, 1.0)).item() == pytest.approx(eq21, abs=1e-15)
    assert torch.equal(shifted_tanh(t, beta, (-1.0, 1.0)), torch.tanh(beta * t))  # Eq. 12


@given(
    x=st.floats(-3, 3),
    beta=st.floats(0.5, 6),
    levels=st.sampled_from(
        [(-1.0, 1.0), (-1.0, 0.0, 1.0), (0.0, 1.0, 3.0), (-2.0, -1.0, 0.5, 2.0)]
    ),
)
def test_shifted_tanh_maps_into_the_open_hull_with_its_inverse_and_derivative(x, beta, levels):
    t = torch.tensor([x], dtype=D64, requires_grad=True)
    w = shifted_tanh(t, beta, levels)
    assert levels[0] <= w.item() <= levels[-1]
    gaps = list(zip(levels, levels[1:], strict=False))
    if (
        beta * max(abs(x - (p + q) / 2) for p, q in gaps) < 15
    ):  # tanh not yet rounded to +-1 in float64
        assert levels[0] < w.item() < levels[-1]
        back = shifted_tanh_inverse(w.detach(), beta, levels)
        assert shifted_tanh(back, beta, levels).item() == pytest.approx(w.item(), abs=1e-12)
    exact = sum(beta * (q - p) / 2 / math.cosh(beta * (x - (p + q) / 2)) ** 2 for p, q in gaps)
    ours = shifted_tanh_derivative(t.detach(), beta, levels).item()
    assert ours == pytest.approx(exact, rel=1e-12, abs=1e-300)
    (autograd,) = torch.autograd.grad(w.sum(), t)  # agrees up to autograd's 1 - tanh^2 rounding
    assert autograd.item() == pytest.approx(exact, rel=1e-6, abs=1e-15)
    # the ends of the real line go to the ends of the hull
    far = torch.tensor([-1e3, 1e3], dtype=D64)
    assert shifted_tanh(far, beta, levels).tolist() == [levels[0], levels[-1]]


@given(
    a=st.floats(-3, 3),
    b=st.floats(-3, 3),
    beta=st.floats(1, 50),
    levels=st.sampled_from([(-1.0, 1.0), (-1.0, 0.0, 1.0), (0.0, 1.0, 3.0)]),
)
def test_proxconnect_quantizers_are_monotone(a, b, beta, levels):
    lo, hi = torch.tensor([min(a, b)], dtype=D64), torch.tensor([max(a, b)], dtype=D64)
    for f in (piecewise_linear, binary_relax, shifted_tanh):
        assert f(lo, beta, levels).item() <= f(hi, beta, levels).item()
    assert piecewise_linear(lo, beta, levels).item() == _linear_scalar(lo.item(), beta, levels)


def test_linear_quantizer_goes_from_identity_to_the_staircase():
    levels = (-1.0, 0.0, 1.0)
    theta = torch.linspace(-1, 1, 101, dtype=D64)
    torch.testing.assert_close(piecewise_linear(theta, 1.0, levels), theta)
    away = (theta.abs() - 0.5).abs() > 0.02  # not at a midpoint
    torch.testing.assert_close(
        piecewise_linear(theta, 1e4, levels)[away], nearest_level(theta, levels)[away]
    )
