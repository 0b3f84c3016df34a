"""The optimizer built from objects: projections, routes and schedules a user passes, the spec in
``state_dict``, the base optimizer's hooks, and parameter groups added during training."""

import copy

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from mdq_teach.nn import (  # noqa: E402
    METHODS,
    BetaSchedule,
    Cancel,
    ChainRule,
    Hard,
    KeptDualMirror,
    ProxStep,
    QuantOptimizer,
    Softmax,
    StraightThrough,
    Tanh,
    build,
    make_optimizer,
)

torch.set_num_threads(1)


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        nn.Parameter(torch.randn(3, 4, generator=gen)),
        nn.Parameter(torch.randn(5, generator=gen)),
    ]


def _steps(opt, params, n=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_its_registry_pair_of_objects(method):
    schedule = dict(beta_init=1.5, beta_scale=1.2, beta_scale_interval=1)
    a, b = _params(), _params()
    by_name = make_optimizer(a, method, lr=0.05, **schedule)
    projection, route = build(method)
    by_objects = QuantOptimizer(b, projection, route, lr=0.05,
                                beta_schedule=BetaSchedule(1.5, 1.2, 1))  # fmt: skip
    for x, y in zip(_steps(by_name, a), _steps(by_objects, b), strict=True):
        assert torch.equal(x, y)


def test_md_tanh_from_objects_with_a_base_class_and_a_schedule():
    a, b = _params(), _params()
    opt = QuantOptimizer(a, projection=Tanh(), route=KeptDualMirror(), base=torch.optim.Adam,
                         beta_schedule=BetaSchedule(1.0, 1.1, 2), lr=0.01)  # fmt: skip
    ref = make_optimizer(b, "md-tanh", lr=0.01, beta_scale=1.1, beta_scale_interval=2)
    for x, y in zip(_steps(opt, a), _steps(ref, b), strict=True):
        assert torch.equal(x, y)


def test_route_arguments_live_on_the_route():
    assert ProxStep(reg="l2", lam=0.1, clamp=False).spec() == dict(reg="l2", lam=0.1, clamp=False)
    assert ChainRule(jacobian="released").spec() == {"jacobian": "released"}
    assert Cancel(clip=False).spec() == {"clip": False}
    with pytest.raises(ValueError, match="reg"):
        ProxStep(reg="l3")
    with pytest.raises(ValueError, match="lam"):
        ProxStep(lam=-1.0)
    with pytest.raises(ValueError, match="clip"):
        Cancel(clip="yes")
    with pytest.raises(ValueError, match="jacobian"):
        ChainRule(jacobian="code")
    with pytest.raises(ValueError, match="released"):
        QuantOptimizer(_params(), Tanh(), ChainRule(jacobian="released"))
    with pytest.raises(ValueError, match="together"):
        QuantOptimizer(_params(), Tanh(), None)


def test_the_spec_is_saved_and_a_state_dict_of_another_spec_is_refused():
    params = _params()
    opt = QuantOptimizer(params, Hard(), Cancel(clip=False), beta_schedule=BetaSchedule(2.0))
    _steps(opt, params, 1)
    quant = opt.state_dict()["quant"]
    assert quant["projection"] == "hard" and quant["route"] == "cancel"
    assert quant["route_args"] == {"clip": False} and quant["levels"] == [-1.0, 1.0]
    assert quant["beta_schedule"]["beta_init"] == 2.0
    same = QuantOptimizer(_params(), Hard(), Cancel(clip=False), beta_schedule=BetaSchedule(2.0))
    same.load_state_dict(opt.state_dict())
    for other in (
        QuantOptimizer(_params(), Hard(), Cancel(clip=True), beta_schedule=BetaSchedule(2.0)),
        QuantOptimizer(_params(), Hard(), Cancel(clip=False), beta_schedule=BetaSchedule(3.0)),
        QuantOptimizer(_params(), Tanh(), StraightThrough(), beta_schedule=BetaSchedule(2.0)),
        QuantOptimizer(
            _params(),
            Hard(),
            Cancel(clip=False),
            levels=(-1, 0, 1),
            beta_schedule=BetaSchedule(2.0),
        ),  # fmt: skip
    ):
        with pytest.raises(ValueError, match="another method"):
            other.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("method", ["md-tanh-s", "md-softmax", "float"])
def test_the_base_optimizers_step_hooks_run(method):
    params = _params()
    opt = make_optimizer(params, method)
    calls = []
    opt.base.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.base.register_step_post_hook(lambda *a: calls.append("post"))
    _steps(opt, params, 2)
    assert calls == ["pre", "post", "pre", "post"]


@pytest.mark.parametrize("method", ["md-tanh-s", "md-tanh", "md-softmax", "pq", "bc"])
def test_a_group_added_during_training_is_quantized_and_stepped(method):
    first, second = _params(0), _params(1)
    opt = make_optimizer(first, method, lr=0.05, beta_scale=1.5, pq_lambda=0.1)
    _steps(opt, first, 2)
    w0 = [p.detach().clone() for p in second]
    opt.add_param_group({"params": second, "lr": 0.02})
    assert opt.param_groups[-1]["lr"] == 0.02 and len(opt.base.param_groups) == 2
    # The model now holds the new parameters' projection at the current beta ...
    ref = make_optimizer([nn.Parameter(w.clone()) for w in w0], method, lr=0.02,
                         beta_init=opt.beta, pq_lambda=0.1)  # fmt: skip
    for p, q in zip(second, ref.param_groups[0]["params"], strict=True):
        assert torch.equal(p, q)
        assert "latent" in opt.state[p]
    # ... and the next step moves their latents (sign weights need not flip in one step).
    before = [opt.state[p]["latent"].clone() for p in second]
    _steps(opt, first + second, 1, seed=7)
    assert all(
        not torch.equal(opt.state[p]["latent"], b) for p, b in zip(second, before, strict=True)
    )


def test_a_float_group_added_during_training_stays_float():
    first, second = _params(0), _params(1)
    opt = make_optimizer(first, "md-tanh-s", lr=0.05)
    _steps(opt, first, 1)
    w0 = [p.detach().clone() for p in second]
    opt.add_param_group({"params": second, "quantize": False})
    assert all(torch.equal(p, w) for p, w in zip(second, w0, strict=True))
    _steps(opt, first + second, 1)
    assert "latent" not in opt.state[second[0]] and "exp_avg" in opt.state[second[0]]


def test_softmax_projection_object_with_pmfs_released_jacobian():
    a, b = _params(), _params()
    opt = QuantOptimizer(a, Softmax(), ChainRule(jacobian="released"), lr=0.05)
    ref = make_optimizer(b, "pmf", lr=0.05, pmf_jacobian="released")
    for x, y in zip(_steps(opt, a), _steps(ref, b), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("method", ["pq", "pmf", "md-softmax", "proxconnect"])
def test_an_optimizer_is_rebuilt_from_its_state_dict(method):
    options = {"pq": dict(pq_reg="l2", pq_clamp=False), "pmf": dict(pmf_jacobian="released"),
               "proxconnect": dict(quantizer="linear")}.get(method, {})  # fmt: skip
    a = _params()
    opt = make_optimizer(a, method, lr=0.05, beta_scale=1.3, **options)
    _steps(opt, a, 2)
    b = [nn.Parameter(torch.zeros_like(p)) for p in a]
    # A copy, as torch's own load_state_dict shares the tensors it is given.
    rebuilt = QuantOptimizer.from_state_dict(b, copy.deepcopy(opt.state_dict()), lr=0.05)
    assert rebuilt.spec() == opt.spec()
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    for x, y in zip(_steps(opt, a, seed=4), _steps(rebuilt, b, seed=4), strict=True):
        assert torch.equal(x, y)
