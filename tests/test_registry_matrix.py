"""Every method of the registry, run as a real ``QuantOptimizer``, against the numpy core's step.

For each projection x route (every registry entry, each route option, ProxConnect's quantizers,
and the plain mirror route) x levels (binary, ternary) x dtype (float32, float64), a few SGD steps
(so the base direction is the route's gradient itself) with beta growing every step are taken on
fixed tensors. Before each step the optimizer's state (latent, weights) is read back in float64
and stepped by ``mdq_teach.maps`` / ``mdq_teach.toy`` / ``mdq_teach.prox``; the weights, the
latents and the primal the torch step leaves must agree to the dtype's rounding. Here the torch
code is tested where it runs: on the optimizer's own path, with its fast paths.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mdq_teach import maps, prox, toy  # noqa: E402
from mdq_teach.nn import METHODS, BetaSchedule, QuantOptimizer, build  # noqa: E402
from mdq_teach.nn.quantize import Mirror, Softmax, Tanh  # noqa: E402

torch.set_num_threads(1)

ETA = 0.1
STEPS = 4
SCHEDULE = (1.5, 1.5, 1)  # beta_init, beta_scale, interval: beta changes at every step
LEVELS = {"binary": (-1.0, 1.0), "ternary": (-1.0, 0.0, 1.0)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Relative to the size of the numbers: float32 steps through tanh and atanh lose a few ulps of
# the dual, amplified by beta near saturation.
TOL = {torch.float32: 2e-4, torch.float64: 1e-9}


def _pairs():
    """(id, projection, route) of every registry method and option, plus the plain mirror."""
    out = []
    for method in METHODS:
        if method == "float":
            continue
        if method == "proxconnect":
            for q in ("hard", "linear", "binaryrelax", "tanh"):
                out.append((f"proxconnect-{q}", *build(method, quantizer=q)))
            continue
        out.append((method, *build(method)))
    out.append(("bc-noclip", *build("bc", bc_clip_grad=False)))
    out.append(("pmf-released", *build("pmf", pmf_jacobian="released")))
    for reg in ("l1", "l2"):
        for clamp in (True, False):
            out.append((f"pq-{reg}-clamp{clamp}",
                        *build("pq", pq_reg=reg, pq_lambda=0.3, pq_clamp=clamp)))  # fmt: skip
    out.append(("tanh-mirror", Tanh(), Mirror()))
    out.append(("softmax-mirror", Softmax(), Mirror()))
    return out


PAIRS = _pairs()


def _inputs(dtype, shape=(3, 5)):
    gen = torch.Generator().manual_seed(5)
    w0 = torch.rand(shape, generator=gen, dtype=torch.float64) * 3 - 1.5
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(STEPS)]
    return w0.to(dtype), [g.to(dtype) for g in grads]


# ----------------------------------------------------------------------------------------------
# the numpy core's step, in float64, from the optimizer's state before the step


def _w_map(levels):
    return maps.Tanh() if levels == (-1.0, 1.0) else maps.ShiftedTanh(levels)


def _project(proj, latent, beta, levels):
    """The weights of P_beta(latent), numpy (u-space latents have the level axis first)."""
    if proj.name == "softmax":
        sm = maps.Softmax(levels)
        return sm.weights(sm.project(np.moveaxis(latent, 0, -1), beta))
    if proj.name == "tanh":
        return _w_map(levels).project(latent, beta)
    if proj.name == "hard":
        return maps.round_to_levels(latent, np.array(levels))
    if proj.name == "identity":
        return latent
    return prox.get_quantizer(proj.name, levels)(latent, beta)


def _latent_grad(proj, route, latent, g, beta, levels):
    """The gradient the route hands to the base optimizer (SGD: the step is -eta times it)."""
    if route.name == "cancel" and route.clip:
        q = levels
        return np.where((latent < q[0]) | (latent > q[-1]), 0.0, g)  # toy._bc_step's gate
    if route.name == "chain" and proj.name == "tanh":
        _, slope, _ = maps.ShiftedTanh(levels)._derivatives(latent, beta)
        return slope * g
    if proj.name == "softmax":
        sm = maps.Softmax(levels)
        gu = sm.lift_gradient(g)
        if route.name != "chain":
            return np.moveaxis(gu, -1, 0)
        u = sm.project(np.moveaxis(latent, 0, -1), beta)
        inner = (u * gu).sum(-1, keepdims=True)
        if route.jacobian == "released":  # beta (I - u u^T) gu
            return np.moveaxis(beta * (gu - u * inner), -1, 0)
        return np.moveaxis(beta * u * (gu - inner), -1, 0)  # the softmax Jacobian
    return g


def _reference(proj, route, state, g, t, beta, beta_next, levels):
    """(weights, latent or None) after one step of the numpy core."""
    latent, w = state["latent"], state["w"]
    if route.name in ("mirror", "mirror-dual"):
        if proj.name == "softmax":
            sm = maps.Softmax(levels)
            u = _simplex(state["primal"])
            return sm.weights(sm.md_step(u, sm.lift_gradient(g), ETA, beta)), None
        return _w_map(levels).md_step(w, g, ETA, beta), None
    if route.name == "prox":
        strength = ETA * route.lam * (t + 1)
        x = toy.prox_w(w - ETA * g, strength, levels, route.reg)
        x = np.clip(x, levels[0], levels[-1]) if route.clamp else x
        return x, x
    new = latent - ETA * _latent_grad(proj, route, latent, g, beta, levels)
    return _project(proj, new, beta_next, levels), new


def _np(t):
    return t.detach().double().numpy()


@pytest.mark.parametrize("dname", DTYPES)
@pytest.mark.parametrize("lname", LEVELS)
@pytest.mark.parametrize("pair", PAIRS, ids=[p[0] for p in PAIRS])
def test_quant_optimizer_steps_like_the_numpy_core(pair, lname, dname):
    _, proj, route = pair
    levels, dtype = LEVELS[lname], DTYPES[dname]
    w0, grads = _inputs(dtype)
    p = torch.nn.Parameter(w0.clone())
    opt = QuantOptimizer([p], proj, route, lr=ETA, levels=levels, base="sgd",
                         beta_schedule=BetaSchedule(*SCHEDULE))  # fmt: skip
    tol = TOL[dtype]
    for t in range(STEPS):
        beta, beta_next = opt.beta_at(t), opt.beta_at(t + 1)
        state = {"latent": _np(opt.state[p]["latent"]), "w": _np(p),
                 "primal": _np(opt.primal(p))}  # fmt: skip
        p.grad = grads[t].clone()
        w_ref, latent_ref = _reference(proj, route, state, _np(grads[t]), t, beta, beta_next,
                                       levels)  # fmt: skip
        opt.step()
        scale = 1 + np.abs(w_ref).max()
        np.testing.assert_allclose(_np(p), w_ref, rtol=0, atol=tol * scale * beta_next,
                                   err_msg=f"weights after step {t}")  # fmt: skip
        if latent_ref is not None:
            np.testing.assert_allclose(_np(opt.state[p]["latent"]), latent_ref, rtol=0,
                                       atol=tol * (1 + np.abs(latent_ref).max()),
                                       err_msg=f"latent after step {t}")  # fmt: skip
        # What rounding and inspection read agrees with the weights the model holds.
        np.testing.assert_allclose(_project_primal(proj, opt.primal(p), levels), _np(p), rtol=0,
                                   atol=tol * scale * beta_next)  # fmt: skip


def _project_primal(proj, primal, levels):
    if proj.space == "u":
        return maps.Softmax(levels).weights(_simplex(_np(primal)))
    return _np(primal)


def _simplex(primal):
    """Probabilities (level axis last) renormalised in float64: float32 ones sum to 1 only to
    within its rounding, and the numpy core checks the simplex in float64."""
    u = np.moveaxis(primal, 0, -1)
    return u / u.sum(-1, keepdims=True)
