"""The optimizer's fast representations against the literal ones they stand for.

``benchmarks/optimizer_overhead.py`` meets its targets through forms that give the same iterates up
to float rounding (docs/design.md §3): one plane of an antisymmetric u-space latent stepped for two
symmetric levels, BinaryConnect's gate as hardtanh's backward kernel, float32 tanh through the
sigmoid on the CPU. Each is checked here against the plain computation.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mdq_teach.nn import make_optimizer
from mdq_teach.nn.quantize import PROJECTIONS, bc_gate, bc_inside, two_level_tanh_into

torch.set_num_threads(1)


def _problem(seed=0, n=24):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(40, n, generator=g, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)
    w0 = 0.7 * torch.randn(n, generator=g, dtype=torch.float64)
    return a, b, w0


def _train(method, levels, base, base_kwargs, steps=12):
    a, b, w0 = _problem()
    p = nn.Parameter(w0.clone())
    opt = make_optimizer([p], method, lr=0.03, levels=levels, base=base, beta_init=1.2,
                         beta_scale=1.15, **base_kwargs)  # fmt: skip
    weights = []
    for _ in range(steps):
        opt.zero_grad()
        ((torch.tanh(a @ p) - b) ** 2).mean().backward()
        opt.step()
        weights.append(p.detach().clone())
    return weights, opt, p


BASES = [
    (torch.optim.Adam, {}),
    (torch.optim.Adam, {"weight_decay": 0.1}),
    (torch.optim.AdamW, {"weight_decay": 0.1}),
    (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    (torch.optim.RMSprop, {"centered": True, "momentum": 0.5}),
]


@pytest.mark.parametrize("method", ["pmf", "md-softmax-s", "md-softmax"])
@pytest.mark.parametrize("levels", [(-1.0, 1.0), (-0.5, 0.5)])
@pytest.mark.parametrize("base,base_kwargs", BASES, ids=lambda b: getattr(b, "__name__", str(b)))
def test_one_plane_steps_like_both_planes(method, levels, base, base_kwargs):
    """Two symmetric levels: stepping plane 1 alone and negating it gives the iterates of the
    base optimizer stepping both planes (a subclass is not assumed to commute with negation, so
    it steps both), weight decay included."""

    class BothPlanes(base):
        pass

    one, opt_one, p_one = _train(method, levels, base, base_kwargs)
    both, opt_both, p_both = _train(method, levels, BothPlanes, base_kwargs)
    for x, y in zip(one, both, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-10)  # rounding, amplified by RMSprop
    latent_one, latent_both = opt_one.state[p_one]["latent"], opt_both.state[p_both]["latent"]
    torch.testing.assert_close(latent_one, latent_both, rtol=0, atol=1e-10)
    # both planes stay antisymmetric, stepped or derived
    assert torch.equal(latent_one[0], -latent_one[1])
    torch.testing.assert_close(latent_both[0], -latent_both[1], rtol=0, atol=1e-12)
    # the base optimizer's moments: the weight's shape for one plane, the latent's for two
    moments = [v for v in opt_one.state[p_one].values() if torch.is_tensor(v) and v.dim() > 0]
    assert {tuple(v.shape) for v in moments} >= {tuple(p_one.shape), tuple(latent_one.shape)}
    moments_both = [k for k, v in opt_both.state[p_both].items()
                    if torch.is_tensor(v) and v.dim() > 0 and k != "latent"]  # fmt: skip
    assert moments_both and all(
        opt_both.state[p_both][k].shape == latent_both.shape for k in moments_both
    )


def test_released_pmf_jacobian_and_asymmetric_levels_step_both_planes():
    for kwargs in ({"levels": (-1.0, 1.0), "pmf_jacobian": "released"}, {"levels": (0.0, 1.0)}):
        p = nn.Parameter(torch.randn(5))
        opt = make_optimizer([p], "pmf", **kwargs)
        p.grad = torch.randn(5)
        opt.step()
        assert opt.state[p]["exp_avg"].shape == (2, 5)


def _gate_values(dtype):
    q = torch.tensor([-1.0, 1.0, -0.5, 2.0], dtype=dtype)
    inf = torch.tensor(math.inf, dtype=dtype)
    near = torch.cat([torch.nextafter(q, inf), torch.nextafter(q, -inf)])
    return torch.cat([q, near, torch.tensor([0.0, -0.0, 0.3, -3.0, 5.0], dtype=dtype)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [(-1.0, 1.0), (-0.5, 2.0), (-1.0, 0.0, 1.0)])
def test_bc_gate_keeps_the_gradient_exactly_on_the_closed_hull(dtype, levels):
    x = _gate_values(dtype)
    g = torch.linspace(1, 2, x.numel(), dtype=dtype)
    inside = (x >= levels[0]) & (x <= levels[-1])
    expected = torch.where(inside, g, torch.zeros_like(g))
    assert torch.equal(bc_gate(g, x, levels), expected)
    out = torch.full_like(g, math.nan)
    assert torch.equal(bc_gate(g, x, levels, out), expected) and torch.equal(out, expected)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-20, 20), min_size=1, max_size=30),
    beta=st.floats(0.01, 100),
    levels=st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (-0.5, 2.0), (-3.0, 3.0)]),
)
def test_two_level_tanh_is_within_a_few_ulps_of_the_gap(values, beta, levels):
    x64 = torch.tensor(values, dtype=torch.float64)
    m, h = (levels[0] + levels[1]) / 2, (levels[1] - levels[0]) / 2
    exact = m + h * torch.tanh(beta * (x64 - m))
    x32 = x64.float()
    got = two_level_tanh_into(torch.empty_like(x32), x32, beta, levels).double()
    # the input's own rounding moves tanh by up to beta h eps |x - m|; the sigmoid form adds a
    # few units of roundoff of h
    eps = torch.finfo(torch.float32).eps
    tol = 4 * eps * h + beta * h * eps * (x64 - m).abs()
    assert torch.all((got - exact).abs() <= tol)
    assert torch.all((got >= levels[0]) & (got <= levels[1]))
    got64 = two_level_tanh_into(torch.empty_like(x64), x64, beta, levels)
    torch.testing.assert_close(got64, exact, rtol=0, atol=4 * torch.finfo(torch.float64).eps * h)


def test_a_state_dict_in_the_earlier_layout_is_refused():
    """A saved u-space latent that is not antisymmetric, or a stored primal where the dual is now
    kept, would silently change a resumed run."""
    p = nn.Parameter(torch.randn(4))
    opt = make_optimizer([p], "md-softmax-s")
    sd = opt.state_dict()
    sd["state"][0]["latent"] = sd["state"][0]["latent"] - 0.5  # both planes shifted
    with pytest.raises(ValueError, match="antisymmetric"):
        make_optimizer([nn.Parameter(torch.randn(4))], "md-softmax-s").load_state_dict(sd)
    sd = make_optimizer([p], "md-tanh").state_dict()
    sd["state"][0]["primal"] = torch.zeros(4)
    with pytest.raises(ValueError, match="'primal'.*earlier version"):
        make_optimizer([nn.Parameter(torch.randn(4))], "md-tanh").load_state_dict(sd)


def test_a_state_dict_of_another_plane_layout_is_refused_not_misread():
    # Plain pmf steps one plane (moments of the weight's shape); the released Jacobian and a
    # user's own base class step both. Loading one into the other must not run on moments of
    # the wrong shape (that read memory out of bounds).
    p = nn.Parameter(torch.randn(5))
    opt = make_optimizer([p], "pmf")
    p.grad = torch.randn(5)
    opt.step()
    sd = opt.state_dict()
    released = make_optimizer([nn.Parameter(torch.randn(5))], "pmf", pmf_jacobian="released")
    with pytest.raises(ValueError, match="pmf_jacobian"):
        released.load_state_dict(sd)

    class MyAdam(torch.optim.Adam):
        pass

    with pytest.raises(ValueError, match="shape"):
        make_optimizer([nn.Parameter(torch.randn(5))], "pmf", base=MyAdam).load_state_dict(sd)


def test_released_pmf_jacobian_resumes_although_its_planes_drift_apart():
    p = nn.Parameter(torch.randn(5))
    opt = make_optimizer([p], "pmf", pmf_jacobian="released")
    for _ in range(3):
        p.grad = torch.randn(5)
        opt.step()
    latent = opt.state[p]["latent"]
    assert not torch.equal(latent[0], -latent[1])
    q = nn.Parameter(p.detach().clone())
    make_optimizer([q], "pmf", pmf_jacobian="released").load_state_dict(opt.state_dict())
    assert torch.equal(q, p)


def test_bc_gate_converts_a_low_precision_gradient_into_its_buffer():
    x = torch.tensor([-1.5, -1.0, 0.2, 1.0, 1.5])
    g = torch.ones(5, dtype=torch.bfloat16)
    out = torch.empty(5)
    assert bc_gate(g, x, (-1.0, 1.0), out) is out
    assert out.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


# ----------------------------------------------------------------------------------------------
# every projection's fast paths against its one reference form


_PROJECTION_LEVELS = [(-1.0, 1.0), (0.0, 1.0), (-0.5, 0.5), (-1.0, 0.0, 1.0), (0.0, 1.0, 3.0)]


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
@pytest.mark.parametrize("levels", _PROJECTION_LEVELS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("one_plane", [False, True])
def test_write_call_and_vjp_agree_with_the_reference_form(name, levels, dtype, one_plane):
    proj = PROJECTIONS[name]().bind(levels, one_plane=one_plane)
    gen = torch.Generator().manual_seed(3)
    w = torch.rand(50, generator=gen, dtype=torch.float64).to(dtype) * 4 - 2
    latent = proj.lift_init(w)
    if getattr(proj, "one_plane", False):
        latent[0] = -latent[1]
    tol = 16 * torch.finfo(dtype).eps
    for beta in (1.0, 3.7, 40.0):
        ref = proj.reference(latent, beta)
        # Only rounding separates the forms: a few ulps of the gap, scaled by beta |x| where
        # beta x is itself rounded.
        atol = tol * (1 + beta * 4) * (levels[-1] - levels[0])
        torch.testing.assert_close(proj(latent, beta), ref, rtol=0, atol=atol)
        out = torch.empty_like(w)
        proj.write(out, latent, beta)
        torch.testing.assert_close(out, proj.weights(ref), rtol=0, atol=atol)
        if name not in ("tanh", "softmax"):
            continue
        g = torch.randn(w.shape, generator=gen, dtype=torch.float64).to(dtype)
        leaf = latent.detach().clone().requires_grad_(True)
        (proj.weights(proj.reference(leaf, beta)) * g).sum().backward()
        expected = leaf.grad[1] if getattr(proj, "one_plane", False) else leaf.grad
        fast = proj.vjp(latent, beta, g, torch.empty_like(expected), weight=out)
        scale = beta * (1 + g.abs().max()) * (levels[-1] - levels[0])
        torch.testing.assert_close(fast, expected, rtol=0, atol=tol * scale * (1 + beta * 4))
        general = proj.vjp(latent, beta, g)  # without the weight: the general form
        general = general if general.shape == expected.shape else general[1]
        torch.testing.assert_close(general, expected, rtol=0, atol=tol * scale * (1 + beta * 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("levels", [(-1.0, 1.0), (-1.0, 0.0, 1.0), (0.0, 1.0)], ids=str)
def test_bc_gate_is_its_reference_the_hull_indicator(dtype, levels):
    x = torch.linspace(-2, 2, 81, dtype=dtype)
    x = torch.cat([x, torch.tensor(levels, dtype=dtype)])
    g = torch.randn(x.shape, dtype=dtype)
    assert torch.equal(bc_gate(g, x, levels), bc_inside(x, levels) * g)


@pytest.mark.parametrize("name", ["tanh", "softmax"])
@pytest.mark.parametrize("levels", [(-1.0, 1.0), (0.0, 1.0), (-1.0, 0.0, 1.0)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_inverse_into_names_the_primal_the_reference_maps_back(name, levels, dtype):
    """The in-place inverse the mirror routes call, against the reference projection: whatever
    representative it picks, projecting it gives the primal back."""
    proj = PROJECTIONS[name]().bind(levels)
    gen = torch.Generator().manual_seed(4)
    latent = proj.lift_init(torch.rand(40, generator=gen, dtype=torch.float64).to(dtype) - 0.5)
    for beta in (1.0, 3.0):
        primal = proj.reference(latent, beta)
        dual = torch.empty_like(latent)
        proj.inverse_into(dual, primal, beta)
        tol = 64 * torch.finfo(dtype).eps * (levels[-1] - levels[0])
        torch.testing.assert_close(proj.reference(dual, beta), primal, rtol=0, atol=tol)
        torch.testing.assert_close(proj.reference(proj.inverse(primal, beta), beta), primal,
                                   rtol=0, atol=tol)  # fmt: skip
