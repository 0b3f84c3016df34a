"""QuantOptimizer as a training tool: every method trains, stays in the hull, rounds exactly,
checkpoints exactly, anneals on schedule, and rejects bad input with a useful message."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mdq_teach.nn import METHODS, QuantOptimizer, make_optimizer, method_table, recompute_bn_stats
from mdq_teach.nn.optim import resolve_base

# Tiny tensors: one thread avoids OpenMP oversubscription on small shared machines.
torch.set_num_threads(1)

PC_QUANTIZERS = ("hard", "linear", "binaryrelax", "tanh")
ALL_CONFIGS = [(m, None) for m in METHODS if m != "proxconnect"] + [
    ("proxconnect", q) for q in PC_QUANTIZERS
]


def _data(seed=0, n=256):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, :3] - x[:, 3:]).argmax(1)  # a linearly separable 3-class problem
    return x, y


def _mlp(seed=0, scale=1.0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net


class TinyConv(nn.Module):
    """A conv net with BatchNorm without affine parameters, as in the paper's quantized models."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4, affine=False)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def _train(net, opt, x, y, steps, check=None):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if check is not None:
            check()
    return losses


def _in_hull_checker(net, levels):
    def check():
        for p in net.parameters():
            assert p.min() >= levels[0] and p.max() <= levels[-1]

    return check


def _unbounded(method, quantizer):
    # ProxQuant has no projection (its regulariser only pulls toward the levels), and BinaryRelax's
    # (theta + beta Q(theta)) / (1 + beta) follows theta outside the hull: neither maps into it.
    return method in ("float", "pq") or quantizer == "binaryrelax"


def _is_quantized(net, levels):
    allowed = torch.tensor(levels)
    return all(torch.isin(p.detach(), allowed).all() for p in net.parameters())


def _kwargs(method, quantizer):
    kw = dict(lr=0.01, beta_scale=1.1, beta_scale_interval=10)
    if method == "pq":
        kw.update(lr=0.05, pq_lambda=1e-3)
    if quantizer is not None:
        kw["quantizer"] = quantizer
    return kw


@pytest.mark.parametrize("method,quantizer", ALL_CONFIGS)
@pytest.mark.fidelity("md:eq6", "md:eq10")
def test_every_method_trains_stays_in_hull_and_rounds_exactly(method, quantizer):
    x, y = _data()
    net = _mlp()
    levels = (-1.0, 1.0)
    opt = make_optimizer(net.parameters(), method, levels=levels, **_kwargs(method, quantizer))
    check = None if _unbounded(method, quantizer) else _in_hull_checker(net, levels)
    if check is not None:
        check()  # the initial projection already lands in the hull
    losses = _train(net, opt, x, y, 120, check)
    assert sum(losses[-10:]) / 10 < 0.7 * losses[0]
    if method == "float":
        return
    soft = [p.detach().clone() for p in net.parameters()]
    opt.round_()
    assert _is_quantized(net, levels)
    with pytest.raises(ValueError, match="restore_"):
        opt.step()  # a step from rounded weights would use gradients of the wrong network
    opt.restore_()
    for p, s in zip(net.parameters(), soft, strict=True):
        assert torch.equal(p, s)


@pytest.mark.parametrize("method,quantizer", [c for c in ALL_CONFIGS if c[0] != "float"])
def test_ternary_conv_net_stays_in_hull_and_rounds_to_three_levels(method, quantizer):
    torch.manual_seed(0)
    net = TinyConv()
    with torch.no_grad():  # start away from 0 so hard quantizers do not begin with a dead network
        for p in net.parameters():
            p.copy_(torch.sign(p) * (0.6 + p.abs()))
    x = torch.randn(64, 1, 4, 4)
    y = (x.mean((1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    levels = (-1.0, 0.0, 1.0)
    opt = make_optimizer(net.parameters(), method, levels=levels, **_kwargs(method, quantizer))
    check = None if _unbounded(method, quantizer) else _in_hull_checker(net, levels)
    losses = _train(net, opt, x, y, 60, check)
    assert min(losses[-5:]) < losses[0]
    soft = [p.detach().clone() for p in net.parameters()]
    with opt.rounded():
        assert _is_quantized(net, levels)
    assert all(torch.equal(a, b) for a, b in zip(soft, net.parameters(), strict=True))


@pytest.mark.parametrize(
    "levels,weights,expected",
    [
        ((-1, 1), [0.0, -1e-30, 0.3, -2.0], [1.0, -1.0, 1.0, -1.0]),  # sign(0) = +1
        ((-1, 0, 1), [0.0, -0.5, 0.5, 0.25, -0.75], [0.0, 0.0, 1.0, 0.0, -1.0]),
        ((0, 1, 3), [0.5, 2.0, 1.9, 7.0, -1.0], [1.0, 3.0, 1.0, 3.0, 0.0]),
    ],
)
def test_rounding_goes_to_the_nearest_level_and_ties_up(levels, weights, expected):
    w = nn.Parameter(torch.tensor(weights))
    opt = make_optimizer([w], "pq", levels=levels)  # pq leaves the initial weights unchanged
    opt.round_()
    assert w.tolist() == expected


def test_u_space_rounding_is_the_argmax_with_ties_up():
    w = nn.Parameter(torch.tensor([0.0, 0.4, -0.6]))
    # u~ = q w - q^2 / 2 puts the largest probability on the level nearest w (0 is a tie)
    opt = make_optimizer([w], "md-softmax-s", levels=(-1, 1))
    opt.round_()
    assert w.tolist() == [1.0, 1.0, -1.0]


def _run_with_checkpoint(method, quantizer, base, levels, base_kwargs):
    x, y = _data(1, 64)
    kw = dict(_kwargs(method, quantizer), levels=levels, base=base, **base_kwargs)
    net = _mlp(3)
    opt = make_optimizer(net.parameters(), method, **kw)
    _train(net, opt, x, y, 7)
    model_sd = copy.deepcopy(net.state_dict())
    opt_sd = copy.deepcopy(opt.state_dict())
    _train(net, opt, x, y, 6)
    straight = [p.detach().clone() for p in net.parameters()]

    net2 = _mlp(4)  # different initial weights: everything must come from the checkpoint
    opt2 = make_optimizer(net2.parameters(), method, **kw)
    net2.load_state_dict(model_sd)
    opt2.load_state_dict(opt_sd)
    assert opt2.step_count == 7 and opt2.beta == opt_sd["beta"]
    _train(net2, opt2, x, y, 6)
    resumed = [p.detach().clone() for p in net2.parameters()]
    return straight, resumed, opt, opt2


@pytest.mark.parametrize("method,quantizer", ALL_CONFIGS)
def test_state_dict_round_trip_gives_identical_steps(method, quantizer):
    straight, resumed, opt, opt2 = _run_with_checkpoint(method, quantizer, "adam", (-1, 1), {})
    for a, b in zip(straight, resumed, strict=True):
        assert torch.equal(a, b)
    sd, sd2 = opt.state_dict(), opt2.state_dict()
    for a, b in zip(sd["aux"], sd2["aux"], strict=True):
        if a is not None:
            assert torch.equal(a["aux"], b["aux"])
    assert sd["step"] == sd2["step"] and sd["beta"] == sd2["beta"]


@pytest.mark.parametrize("base,base_kwargs", [("sgd", {"momentum": 0.9}), ("rmsprop", {})])
@pytest.mark.parametrize("method", ["md-softmax", "md-tanh", "pq"])
def test_state_dict_round_trip_other_bases_and_ternary(method, base, base_kwargs):
    straight, resumed, *_ = _run_with_checkpoint(method, None, base, (-1, 0, 1), base_kwargs)
    for a, b in zip(straight, resumed, strict=True):
        assert torch.equal(a, b)


def test_load_state_dict_rejects_another_method():
    net = _mlp()
    sd = make_optimizer(net.parameters(), "md-tanh-s").state_dict()
    with pytest.raises(ValueError, match="method"):
        make_optimizer(_mlp().parameters(), "bc").load_state_dict(sd)


@pytest.mark.fidelity("md:alg1", "md:alg2")
def test_beta_schedule_multiplies_every_interval_from_step_zero_and_caps():
    net = _mlp()
    opt = make_optimizer(
        net.parameters(),
        "md-tanh-s",
        beta_init=2.0,
        beta_scale=1.5,
        beta_scale_interval=3,
        beta_max=5.0,
    )
    x, y = _data()
    seen = [opt.beta]
    for _ in range(11):
        _train(net, opt, x, y, 1)
        seen.append(opt.beta)
    # steps 0-2 use 2, steps 3-5 use 3, steps 6-8 use 4.5, then the cap 5
    assert seen == [2.0] * 3 + [3.0] * 3 + [4.5] * 3 + [5.0] * 3
    assert opt.beta_at(10**6) == 5.0


def test_beta_overflow_asks_for_a_cap():
    opt = make_optimizer(_mlp().parameters(), "md-tanh-s", beta_scale=10.0)
    with pytest.raises(ValueError, match="beta_max"):
        opt.beta_at(400)


def test_model_holds_projected_weights_at_construction():
    net = _mlp()
    w0 = net[0].weight.detach().clone()
    make_optimizer(net.parameters(), "md-tanh-s", beta_init=3.0)
    assert torch.allclose(net[0].weight, torch.tanh(3.0 * w0))
    net = _mlp()
    make_optimizer(net.parameters(), "pq")
    assert torch.equal(net[0].weight, w0)


def test_float_group_is_trained_by_the_base_optimizer_alone():
    x, y = _data()
    net, ref = _mlp(), _mlp()
    groups = [
        {"params": [net[0].weight, net[2].weight]},
        {"params": [net[0].bias, net[2].bias], "quantize": False, "lr": 0.02},
    ]
    opt = make_optimizer(groups, "md-tanh-s", lr=0.01)
    ref_opt = torch.optim.Adam([ref[0].bias, ref[2].bias], lr=0.02)
    for _ in range(5):
        for model, o in ((net, opt), (ref, ref_opt)):
            o.zero_grad()
            F.cross_entropy(model(x), y).backward()
        # the reference sees the same gradients on the biases
        ref[0].bias.grad, ref[2].bias.grad = net[0].bias.grad.clone(), net[2].bias.grad.clone()
        opt.step()
        ref_opt.step()
        assert torch.equal(net[0].bias, ref[0].bias) and torch.equal(net[2].bias, ref[2].bias)
    assert net[0].weight.abs().max() < 1
    opt.round_()
    assert torch.isin(net[0].weight, torch.tensor([-1.0, 1.0])).all()
    assert torch.equal(net[0].bias, ref[0].bias)


def test_float_method_is_the_base_optimizer():
    x, y = _data()
    net, ref = _mlp(), _mlp()
    opt = make_optimizer(net.parameters(), "float", lr=0.01, weight_decay=1e-3)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=1e-3)
    _train(net, opt, x, y, 5)
    _train(ref, ref_opt, x, y, 5)
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lr_scheduler_drives_the_inner_step():
    net = nn.Linear(2, 1, bias=False)
    opt = make_optimizer(net.parameters(), "md-tanh-s", lr=0.1, base="sgd")
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    aux = [opt.state_dict()["aux"][0]["aux"].clone()]
    for _ in range(2):
        opt.zero_grad()
        net.weight.grad = torch.ones_like(net.weight)
        opt.step()
        sched.step()
        aux.append(opt.state_dict()["aux"][0]["aux"].clone())
    assert torch.allclose(aux[0] - aux[1], torch.full((2,), 0.1))
    assert torch.allclose(aux[1] - aux[2], torch.full((2,), 0.05))


@pytest.mark.fidelity("md:eq10")
def test_u_space_state_has_one_axis_per_level():
    net = nn.Linear(3, 2)
    opt = make_optimizer(net.parameters(), "md-softmax", levels=(-1, 0, 1))
    state = opt.state_dict()["aux"][0]
    assert state["aux"].shape == (8, 3) and state["primal"].shape == (8, 3)
    assert torch.allclose(state["primal"].sum(-1), torch.ones(8))


def test_base_names_and_classes():
    assert resolve_base("adam") is torch.optim.Adam
    assert resolve_base(torch.optim.SGD) is torch.optim.SGD
    with pytest.raises(ValueError, match="'adam'.*'sgd'"):
        resolve_base("adamm")
    opt = make_optimizer(_mlp().parameters(), "md-tanh-s", base=torch.optim.SGD, momentum=0.9)
    assert isinstance(opt.base, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    assert isinstance(opt, torch.optim.Optimizer) and isinstance(opt, QuantOptimizer)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(method="md-tanh-x"), r"method must be one of \('float', 'bc'"),
        (dict(method="bc", quantizer="tanh"), "only accepted with method 'proxconnect'"),
        (dict(method="proxconnect", quantizer="cubic"), r"quantizer must be one of \('hard'"),
        (dict(method="pq", pq_reg="l3"), r"pq_reg must be one of \('l1', 'l2'\)"),
        (dict(method="pq", pq_lambda=-1.0), r"pq_lambda must be in \[0, inf\)"),
        (dict(method="md-tanh-s", beta_init=0.0), r"beta_init must be in \(0, inf\)"),
        (dict(method="md-tanh-s", beta_scale=-2.0), r"beta_scale must be in \(0, inf\)"),
        (dict(method="md-tanh-s", beta_max=0.5), "beta_max must be >= beta_init"),
        (dict(method="md-tanh-s", beta_scale_interval=0), "beta_scale_interval must be an int"),
        (dict(method="md-tanh-s", beta_scale_interval=2.5), "beta_scale_interval must be an int"),
        (dict(method="md-tanh-s", lr=-0.1), r"lr must be in \(0, inf\)"),
        (dict(method="md-tanh-s", lr=math.nan), r"lr must be in \(0, inf\)"),
        (dict(method="md-tanh-s", levels=(1.0,)), "at least 2"),
        (dict(method="md-tanh-s", levels=(0.0, 0.0, 1.0)), "distinct"),
        (dict(method="md-tanh-s", levels=(0.0, math.inf)), "finite"),
        (dict(method="md-tanh-s", base="lbfgs"), "base must be"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(_mlp().parameters(), **kwargs)


@pytest.mark.parametrize("method", ["md-tanh-s", "float", "pq"])
def test_non_finite_gradient_names_the_parameter(method):
    net = _mlp()
    opt = make_optimizer(list(net.named_parameters()), method)
    opt.zero_grad()
    F.cross_entropy(net(_data()[0]), _data()[1]).backward()
    net[2].weight.grad[0, 0] = math.nan
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=r"2\.weight.*NaN or inf"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    opt2 = make_optimizer(_mlp().parameters(), method)
    for p in opt2.param_groups[0]["params"]:
        p.grad = torch.zeros_like(p)
    opt2.param_groups[0]["params"][1].grad[0] = math.inf
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\]"):
        opt2.step()


@pytest.mark.parametrize("method", ["md-tanh-s", "float"])
def test_finite_gradients_whose_sum_overflows_are_accepted(method):
    # The finiteness screen sums the gradients; a sum that overflows must not be mistaken for a
    # non-finite gradient.
    net = _mlp()
    opt = make_optimizer(net.parameters(), method)
    for p in net.parameters():
        p.grad = torch.full_like(p, 3e38)
    assert not torch.isfinite(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).sum())
    opt.step()
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


def test_mixed_dtypes_in_a_quantized_group_are_rejected():
    a = nn.Parameter(torch.zeros(2))
    b = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="one floating dtype"):
        make_optimizer([a, b], "md-tanh-s")


@pytest.mark.fidelity("pc:a")
def test_method_table_covers_every_method_from_the_registry():
    rows = method_table()
    assert [r["method"] for r in rows] == list(METHODS)
    assert set(METHODS) == {
        "float",
        "bc",
        "pq",
        "pmf",
        "gd-tanh",
        "md-tanh",
        "md-tanh-s",
        "md-softmax",
        "md-softmax-s",
        "proxconnect",
    }
    for r in rows:
        assert set(r) == {"method", "space", "projection", "route", "rounding"}
        assert all(isinstance(v, str) and v for v in r.values())
    by = {r["method"]: r for r in rows}
    assert by["pmf"]["space"] == by["md-softmax-s"]["space"] == "u"
    assert by["md-tanh-s"]["route"] == by["proxconnect"]["route"]  # Sec. 3.2: both are the STE
    assert all(q in by["proxconnect"]["projection"] for q in PC_QUANTIZERS)
    for m in METHODS:  # every listed method builds an optimizer
        make_optimizer(_mlp().parameters(), m)


def test_recompute_bn_stats_is_the_cumulative_average_over_batches():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, affine=False, momentum=0.3))
    batches = [torch.randn(5, 1, 6, 6) + i for i in range(4)]
    net.eval()
    seen = recompute_bn_stats(net, [(b, torch.zeros(5)) for b in batches])
    assert seen == 4
    bn = net[1]
    assert not net.training and not bn.training and bn.momentum == 0.3
    with torch.no_grad():
        acts = [net[0](b) for b in batches]
    n = acts[0].numel() / 3
    means = torch.stack([a.mean((0, 2, 3)) for a in acts])
    vars_ = torch.stack([a.var((0, 2, 3), unbiased=False) * n / (n - 1) for a in acts])
    assert torch.allclose(bn.running_mean, means.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, vars_.mean(0), atol=1e-5)
    assert bn.num_batches_tracked.item() == 4


def test_recompute_bn_stats_needs_batches():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with pytest.raises(ValueError, match="at least one batch"):
        recompute_bn_stats(net, [])
    assert recompute_bn_stats(nn.Linear(2, 2), []) == 0
