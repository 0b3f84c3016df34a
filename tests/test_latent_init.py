"""Where the latents start (mdq_teach.nn.latent_init): the map onto the levels' scale against an
independent float64 computation, "auto" bit for bit the paper's init for two levels -a, a, and a
freshly built ternary network that uses all three levels (with the paper's init it rounds to all
zeros: the collapse this module fixes)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from mdq_teach.nn import METHODS, make_optimizer
from mdq_teach.nn.latent_init import (
    LATENT_INITS,
    check_latent_init,
    levels_spread,
    scales_to_levels,
    sign_invariant,
    to_levels_scale,
)
from mdq_teach.nn.models import get_model
from mdq_teach.nn.trainer import main, resolve_config

torch.set_num_threads(1)

TERNARY = (-1.0, 0.0, 1.0)
PC_QUANTIZERS = ("hard", "linear", "binaryrelax", "tanh")
QUANTIZED = [(m, None) for m in METHODS if m not in ("float", "proxconnect")] + [
    ("proxconnect", q) for q in PC_QUANTIZERS
]


def _options(quantizer):
    return {} if quantizer is None else {"quantizer": quantizer}


def _smallconv(seed=0, quantized=True):
    """The laptop chapter's network, Xavier-uniform as in the paper (the quantized one's last
    layer has a bias, drawn from N(0, 0.1^2))."""
    torch.manual_seed(seed)
    return get_model("smallconv", 10, 1, quantized, size=28)


def _expected(w: np.ndarray, levels) -> np.ndarray:
    """c + w s_Q / s_w in float64, written from the definition (numpy, population std)."""
    q = np.asarray(levels, dtype=np.float64)
    c = (q.min() + q.max()) / 2
    w = np.asarray(w, dtype=np.float64)
    s_w = w.std() if w.size > 1 else 0.0
    if not (s_w > 0 and np.isfinite(s_w)):
        return w + c
    return c + w * (q.std() / s_w)


# ----------------------------------------------------------------------------------------------
# the map


def _level_sets(min_size=2, max_size=5):
    values = st.floats(-8, 8, allow_nan=False, width=32)
    return st.lists(values, min_size=min_size, max_size=max_size, unique=True).map(
        lambda v: tuple(sorted(float(x) for x in v))
    ).filter(lambda q: min(b - a for a, b in zip(q, q[1:], strict=False)) > 1e-3)  # fmt: skip


@given(
    w=st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=60),
    levels=_level_sets(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_to_levels_scale_matches_an_independent_float64_computation(w, levels, dtype):
    t = torch.tensor(w, dtype=dtype)
    before = t.clone()
    out = to_levels_scale(t, levels)
    assert out.dtype == dtype and out.shape == t.shape
    assert torch.equal(t, before)  # a new tensor; the input is untouched
    expected = _expected(t.double().numpy(), levels)
    eps = 1e-12 if dtype == torch.float64 else 2e-6
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=eps, atol=eps * scale)


@given(
    shape=st.sampled_from([(7,), (4, 5), (3, 2, 3, 3)]),
    seed=st.integers(0, 2**31 - 1),
    levels=_level_sets(),
)
def test_mapped_tensor_has_the_levels_spread(shape, seed, levels):
    """The mapped tensor's population std is the levels' std; its mean moves by the tensor's mean
    scaled (the map keeps the tensor's own offset from c)."""
    g = torch.Generator().manual_seed(seed)
    w = (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) * 0.16  # Xavier-like
    out = to_levels_scale(w, levels)
    c, s_q = levels_spread(levels)
    assert out.std(unbiased=False).item() == pytest.approx(s_q, rel=1e-12)
    s_w = w.std(unbiased=False).item()
    mean = c + w.mean().item() * s_q / s_w
    assert out.mean().item() == pytest.approx(mean, abs=1e-12 * (1 + s_q))


@pytest.mark.parametrize(
    "levels, centre, std",
    [
        ((-1.0, 1.0), 0.0, 1.0),
        ((-0.5, 0.5), 0.0, 0.5),
        ((-1.0, 0.0, 1.0), 0.0, math.sqrt(2 / 3)),
        ((0.0, 1.0), 0.5, 0.5),
        ((0.0, 1.0, 3.0), 1.5, math.sqrt(42) / math.sqrt(27)),  # mean 4/3: (16 + 1 + 25) / 27
        ((-2.0, -1.0, 0.0, 1.0, 2.0), 0.0, math.sqrt(2.0)),
    ],
)
def test_levels_spread_is_the_midpoint_of_the_range_and_the_population_std(levels, centre, std):
    c, s = levels_spread(levels)
    assert c == pytest.approx(centre, abs=1e-15) and s == pytest.approx(std, rel=1e-15)


@given(levels=_level_sets(2, 8))
def test_levels_spread_against_numpy(levels):
    q = np.asarray(levels, dtype=np.float64)
    c, s = levels_spread(levels)
    assert c == (q[0] + q[-1]) / 2  # the midpoint of the range, not the mean of the levels
    assert s == pytest.approx(q.std(), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("levels", [(-1.0, 0.0, 1.0), (0.0, 1.0, 3.0), (0.0, 1.0)])
@pytest.mark.parametrize(
    "w",
    [
        torch.tensor([0.37]),  # one element
        torch.full((3, 4), -0.02),  # all equal
        torch.zeros(5, dtype=torch.float64),
        torch.tensor([]),  # no element
    ],
    ids=["one-element", "all-equal", "zeros", "empty"],
)
def test_tensor_without_spread_keeps_its_values_around_the_centre(w, levels):
    c, _ = levels_spread(levels)
    out = to_levels_scale(w, levels)
    assert out.dtype == w.dtype and out.shape == w.shape
    assert torch.equal(out, w + c)
    assert torch.isfinite(out).all()


def test_non_finite_tensor_is_shifted_not_scaled():
    w = torch.tensor([0.1, float("nan"), -0.2])
    out = to_levels_scale(w, (0.0, 1.0, 3.0))
    assert torch.equal(out[[0, 2]], w[[0, 2]] + 1.5) and out[1].isnan()


def test_which_levels_are_scaled():
    assert sign_invariant((-1.0, 1.0)) and sign_invariant((-0.5, 0.5))
    for levels in [(-1.0, 0.0, 1.0), (0.0, 1.0), (-0.5, 2.0), (-2.0, -1.0, 1.0, 2.0)]:
        assert not sign_invariant(levels)
        assert scales_to_levels("auto", levels) and scales_to_levels("levels", levels)
        assert not scales_to_levels("weights", levels)
    assert not scales_to_levels("auto", (-1.0, 1.0))
    assert scales_to_levels("levels", (-1.0, 1.0)) and not scales_to_levels("weights", (-1.0, 1.0))


# ----------------------------------------------------------------------------------------------
# the optimizer


def _latents(opt):
    return [opt.state[p]["latent"].clone() for group in opt.param_groups for p in group["params"]
            if "latent" in opt.state[p]]  # fmt: skip


@pytest.mark.parametrize("levels", [(-1.0, 1.0), (-0.5, 0.5)])
@pytest.mark.parametrize("method", METHODS)
def test_auto_is_the_papers_init_bit_for_bit_for_two_symmetric_levels(method, levels):
    quantizers = PC_QUANTIZERS if method == "proxconnect" else (None,)
    for quantizer in quantizers:
        built = {}
        for init in ("auto", "weights", "levels"):
            net = _smallconv(quantized=method != "float")
            opt = make_optimizer(net.parameters(), method, levels=levels, latent_init=init,
                                 **_options(quantizer))  # fmt: skip
            built[init] = ([p.detach().clone() for p in net.parameters()], _latents(opt))
        for a, b in zip(built["auto"][0] + built["auto"][1],
                        built["weights"][0] + built["weights"][1], strict=True):  # fmt: skip
            assert torch.equal(a, b), (method, quantizer)
        if method != "float":  # the comparison can see a difference: "levels" scales them
            assert not all(torch.equal(a, b) for a, b in
                           zip(built["auto"][1], built["levels"][1], strict=True))  # fmt: skip


def _level_shares(t, levels):
    return [float((t == q).double().mean()) for q in levels]


@pytest.mark.parametrize("method,quantizer", QUANTIZED)
def test_fresh_ternary_network_uses_all_three_levels_in_every_layer(method, quantizer):
    """The bug: Xavier weights (|w| < 0.08 here) all round to 0 for {-1, 0, 1}."""
    net = _smallconv()
    assert max(p.abs().max().item() for p in net.parameters() if p.dim() > 1) < 0.5
    opt = make_optimizer(net.parameters(), method, levels=TERNARY, **_options(quantizer))
    with opt.rounded():
        for name, p in net.named_parameters():
            assert set(p.unique().tolist()) <= set(TERNARY), name
            shares = _level_shares(p, TERNARY)
            if p.numel() >= 50:  # kernels and matrices: each level takes a fair share
                assert all(0.2 <= s <= 0.5 for s in shares), (name, shares)
            else:  # the 10 biases: at least two levels, so not a constant
                assert sum(s > 0 for s in shares) >= 2, (name, shares)


@pytest.mark.parametrize("method,quantizer", [("bc", None), ("md-tanh-s", None), ("pq", None)])
def test_papers_init_rounds_a_ternary_network_to_zeros(method, quantizer):
    """What latent_init="weights" (the old behaviour) gives: the collapse the default avoids."""
    net = _smallconv()
    opt = make_optimizer(net.parameters(), method, levels=TERNARY, latent_init="weights",
                         **_options(quantizer))  # fmt: skip
    with opt.rounded():
        for name, p in net.named_parameters():
            if p.dim() > 1:
                assert torch.all(p == 0), name


def _expected_latent(w: torch.Tensor, levels, latent_shape) -> torch.Tensor:
    """The latent a quantized parameter with float weights ``w`` starts from, for levels other
    than -a, a: x~ = c + w s_Q / s_w in w-space, u~_k = q_k x~ - q_k^2 / 2 in u-space."""
    x = torch.from_numpy(_expected(w.detach().double().numpy(), levels))
    if tuple(latent_shape) == tuple(w.shape):
        return x
    q = torch.tensor(levels, dtype=torch.float64).reshape(-1, *([1] * w.dim()))
    return q * x.unsqueeze(0) - q * q / 2


def _assert_latent(latent, method, w, levels):
    expected = _expected_latent(w, levels, latent.shape)
    if method == "md-softmax":  # keeps the dual log(u) / beta, u = softmax(beta u~), beta_0 = 1
        latent, expected = torch.softmax(latent.double(), 0), torch.softmax(expected, 0)
    torch.testing.assert_close(latent.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method,quantizer", QUANTIZED)
def test_construction_and_reset_from_params_apply_the_same_map(method, quantizer):
    levels = (0.0, 1.0, 3.0)  # not centred on 0, unequal gaps: c = 1.5
    net = _smallconv(seed=0)
    other = _smallconv(seed=1)
    floats = [p.detach().clone() for p in net.parameters()]
    opt = make_optimizer(net.parameters(), method, levels=levels, **_options(quantizer))
    params = list(net.parameters())
    for p, w in zip(params, floats, strict=True):
        _assert_latent(opt.state[p]["latent"], method, w, levels)
    # load other float weights into the model, then take them up
    with torch.no_grad():
        for p, w in zip(params, other.parameters(), strict=True):
            p.copy_(w)
    opt.reset_latents_from_params()
    fresh_net = _smallconv(seed=1)
    fresh = make_optimizer(fresh_net.parameters(), method, levels=levels, **_options(quantizer))
    for p, w, q in zip(params, other.parameters(), fresh_net.parameters(), strict=True):
        latent = opt.state[p]["latent"]
        assert torch.equal(latent, fresh.state[q]["latent"])
        _assert_latent(latent, method, w, levels)
        assert torch.equal(p, q)  # the model holds the same soft weights as a fresh build


def test_latent_init_is_kept_on_the_optimizer_and_in_the_default():
    p = nn.Parameter(torch.randn(8))
    assert make_optimizer([p], "md-tanh-s").latent_init == "auto"
    assert make_optimizer([p], "md-tanh-s", latent_init="levels").latent_init == "levels"
    assert resolve_config({}).latent_init == "auto"


# ----------------------------------------------------------------------------------------------
# bad values


@pytest.mark.parametrize("bad", ["level", "Weights", "", None, 1, "paper"])
def test_bad_latent_init_names_the_argument_and_the_choices(bad):
    message = f"latent_init must be one of {LATENT_INITS}, got {bad!r}"
    with pytest.raises(ValueError) as info:
        check_latent_init(bad)
    assert str(info.value) == message
    p = nn.Parameter(torch.randn(4))
    with pytest.raises(ValueError) as info:
        make_optimizer([p], "md-tanh-s", levels=TERNARY, latent_init=bad)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        resolve_config({"latent_init": bad})
    assert str(info.value) == message


def test_bad_latent_init_on_the_command_line_exits_2(tmp_path, capsys):
    argv = ["--dataset", "synthetic", "--arch", "smallconv", "--iterations", "2",
            "--no-progress", "--device", "cpu", "--out", str(tmp_path / "run"),
            "--latent-init", "level"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--latent-init" in last and "'level'" in last
    assert all(choice in last for choice in LATENT_INITS)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------
# the trainer: constant layers of the rounded network


TINY_RUN = dict(dataset="synthetic", arch="smallconv", levels=TERNARY, iterations=12,
                batch_size=16, eval_interval=4, log_interval=4, bn_batches=1, device="cpu",
                progress=False)  # fmt: skip


def _constant_warnings(caught):
    return [w for w in caught if "the rounded network is constant" in str(w.message)]


def test_collapsed_ternary_run_warns_once_and_records_the_constant_layers(tmp_path):
    """latent_init="weights" reproduces the collapse: every layer rounds to 0."""
    import json
    import warnings

    from mdq_teach.nn.trainer import train

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(dict(TINY_RUN, method="md-tanh-s", latent_init="weights",
                            out=str(tmp_path / "run")))  # fmt: skip
    found = _constant_warnings(caught)
    assert len(found) == 1  # three validations, one warning
    message = str(found[0].message)
    names = [n for n, _ in _smallconv().named_parameters()]
    assert all(n in message for n in names) and "every element 0" in message
    evals = [r for r in result["history"] if r["kind"] == "eval"]
    assert len(evals) == 3
    for record in evals:
        assert record["constant_layers"] == [{"name": n, "value": 0.0} for n in names]
    on_disk = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["constant_layers"] for r in on_disk if r["kind"] == "eval"] == [
        r["constant_layers"] for r in evals
    ]


@pytest.mark.parametrize("method", ["md-tanh-s", "bc"])
def test_normal_ternary_run_has_no_constant_layer(method):
    import warnings

    from mdq_teach.nn.trainer import train

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(dict(TINY_RUN, method=method))
    assert not _constant_warnings(caught)
    evals = [r for r in result["history"] if r["kind"] == "eval"]
    assert evals and all(r["constant_layers"] == [] for r in evals)


def test_constant_layers_names_only_the_constant_quantized_tensors():
    from mdq_teach.nn.trainer import constant_layers

    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    with torch.no_grad():
        net[0].weight.fill_(-1.0)
        net[0].bias.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0]))
        net[1].weight.fill_(2.0)
        net[1].bias.fill_(5.0)  # one element: nothing to compare
    names = ["0.weight", "0.bias", "1.bias"]  # 1.weight is constant but not watched
    assert constant_layers(net, names) == [{"name": "0.weight", "value": -1.0}]
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    assert constant_layers(net, names) == []


# ----------------------------------------------------------------------------------------------
# the test: ternary training on real Fashion-MNIST is far above chance for every method


FMNIST_RUN = dict(dataset="fashion-mnist", arch="smallconv", levels=TERNARY, iterations=300,
                  batch_size=64, lr=3e-3, eval_interval=150, log_interval=150, bn_batches=2,
                  train_size=5000, val_size=1000, test_size=2000, augment=False, device="cpu",
                  progress=False, seed=0)  # fmt: skip
# Every method of the registry takes any sorted levels (3+ levels: the shifted tanh of Eq. 21,
# the d-level simplex, nearest-level rounding); float has no levels.
TERNARY_METHODS = [m for m in METHODS if m != "float"]


@pytest.fixture(scope="module")
def fashion_mnist():
    from mdq_teach import fetch
    from mdq_teach.nn import data as data_lib

    if fetch.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed (python -m mdq_teach.fetch fashion-mnist)")
    r = FMNIST_RUN
    return data_lib.load("fashion-mnist", None, r["val_size"], 0, r["train_size"],
                         r["test_size"], False)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("method", TERNARY_METHODS)
def test_ternary_smallconv_learns_fashion_mnist(method, fashion_mnist):
    """300 iterations of batch 64 on 5,000 real training images (about 5 s a method on one core;
    md-tanh about 20 s: its step inverts the shifted tanh). Measured with this seed: test accuracy
    0.61 to 0.77 for every method; 0.105 (chance) for every method with latent_init="weights",
    the old behaviour, whose rounded network is all zeros."""
    import warnings

    from mdq_teach.nn.trainer import train

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(dict(FMNIST_RUN, method=method), data=fashion_mnist)
    assert not _constant_warnings(caught)
    assert result["finished"] and result["test_acc"] >= 0.5, result["test_acc"]  # chance: 0.10
    for name, p in result["model"].named_parameters():  # the best rounded network
        assert set(p.unique().tolist()) == set(TERNARY), name  # uses all three levels
