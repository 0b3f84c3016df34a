"""mdq_teach.nn.models: shapes, parameter counts computed by formula, BatchNorm, initialisation."""

import math

import pytest
import torch
from torch import nn

from mdq_teach.nn import make_optimizer
from mdq_teach.nn.models import get_model


def conv(c_in, c_out, k, bias=False, groups=1):
    return c_in // groups * c_out * k * k + (c_out if bias else 0)


def resnet18_count(classes, c_in, affine):
    """Stem, four stages of two basic blocks (1x1 projection shortcut when the shape changes)."""
    n, bn = conv(c_in, 64, 3), [64]
    c = 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        n += conv(c, c_out, 3) + 3 * conv(c_out, c_out, 3)
        bn += [c_out] * 4
        if stride != 1 or c != c_out:
            n += conv(c, c_out, 1)
            bn.append(c_out)
        c = c_out
    return n + 512 * classes + classes + (2 * sum(bn) if affine else 0)


def vgg16_count(classes, c_in, affine):
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    n, c = 0, c_in
    for w in widths:
        n, c = n + conv(c, w, 3, bias=True), w
    n += 2 * (512 * 512 + 512) + 512 * classes + classes
    return n + (2 * (sum(widths) + 1024) if affine else 0)


def mobilenetv2_count(classes, c_in, affine):
    stages = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1)]
    n, bn, c = conv(c_in, 32, 3), [32], 32
    for t, c_out, blocks in stages:
        for _ in range(blocks):
            h = c * t
            if t != 1:
                n, bn = n + conv(c, h, 1), bn + [h]
            n += conv(h, h, 3, groups=h) + conv(h, c_out, 1)
            bn += [h, c_out]
            c = c_out
    n += conv(320, 1280, 1) + 1280 * classes + classes
    return n + (2 * (sum(bn) + 1280) if affine else 0)


@pytest.mark.parametrize(
    "arch,formula",
    [("resnet18", resnet18_count), ("vgg16", vgg16_count), ("mobilenetv2", mobilenetv2_count)],
)
@pytest.mark.parametrize("classes,c_in,quantized", [(10, 3, True), (100, 3, False), (7, 1, True)])
def test_parameter_counts_match_the_formula(arch, formula, classes, c_in, quantized):
    model = get_model(arch, classes, c_in, quantized)
    assert sum(p.numel() for p in model.parameters()) == formula(classes, c_in, not quantized)


def test_counts_agree_with_published_figures():
    # Widely reported sizes: the CIFAR ResNet-18 with 10 classes has 11,173,962 parameters, and
    # torchvision's MobileNetV2 (3,504,872 with 1000 classes) has 3,504,872 - 1,281,000 + 12,810
    # with a 10-class head; the CIFAR adaptation changes strides only.
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(get_model("resnet18", 10, 3, quantized=False)) == 11_173_962
    assert count(get_model("mobilenetv2", 10, 3, quantized=False)) == 3_504_872 - 1_281_000 + 12_810


@pytest.mark.parametrize("arch", ["resnet18", "vgg16", "mobilenetv2"])
def test_shapes_for_32x32_inputs(arch):
    model = get_model(arch, num_classes=13, in_channels=2).eval()
    assert model(torch.randn(2, 2, 32, 32)).shape == (2, 13)


def test_small_convnet_for_fashion_mnist():
    model = get_model("smallconv", 10, 1)
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    w, h = 8, 32  # defaults: conv(1, w), conv(w, 2w), linear(2w*7*7, h), linear(h, 10) + bias
    assert sum(p.numel() for p in model.parameters()) == (
        9 * w + 9 * w * 2 * w + 2 * w * 49 * h + h * 10 + 10
    )


@pytest.mark.parametrize("arch", ["resnet18", "vgg16", "mobilenetv2", "smallconv"])
def test_batchnorm_affine_only_in_float_networks(arch):
    for quantized in (True, False):
        bns = [
            m
            for m in get_model(arch, 10, 3, quantized).modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        assert bns and all(m.affine == (not quantized) for m in bns)


def test_paper_initialisation():
    torch.manual_seed(0)
    model = get_model("vgg16", 10, 3)
    biases = torch.cat([m.bias for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)])
    assert len(biases) > 5000 and abs(biases.std().item() - 0.1) < 0.005
    assert abs(biases.mean().item()) < 0.005
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            receptive = m.weight[0, 0].numel() if m.weight.dim() == 4 else 1
            fan_in, fan_out = m.weight.shape[1] * receptive, m.weight.shape[0] * receptive
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert m.weight.abs().max().item() <= bound
            if m.weight.numel() > 100_000:  # uniform on [-a, a] has variance a^2 / 3
                assert abs(m.weight.var().item() / (bound**2 / 3) - 1) < 0.02


@pytest.mark.parametrize("arch", ["smallconv", "resnet18"])
def test_every_parameter_is_quantized_by_default(arch):
    model = get_model(arch, 10, 3 if arch == "resnet18" else 1)
    opt = make_optimizer(model.parameters(), "md-tanh-s", levels=(-1, 1))
    opt.round_()
    values = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert set(values.unique().tolist()) == {-1.0, 1.0}


def test_bad_arguments():
    with pytest.raises(ValueError, match="arch must be one of"):
        get_model("resnet50")
    with pytest.raises(ValueError, match="num_classes"):
        get_model("resnet18", 0)
    with pytest.raises(ValueError, match="in_channels"):
        get_model("resnet18", 10, 0)


def test_mlp_is_per_example_and_matches_its_formula():
    torch.manual_seed(0)
    model = get_model("mlp", 10, 3, True, hidden=8, size=4)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    x = torch.randn(5, 3, 4, 4)
    first, second = model.body[1], model.body[3]
    want = torch.relu(x.reshape(5, -1) @ first.weight.T + first.bias) @ second.weight.T
    with torch.no_grad():
        assert torch.allclose(model(x), want + second.bias, atol=1e-6)
        # An example's output does not depend on the rest of its batch (no batch statistics).
        assert torch.allclose(model(x[:2]), model(x)[:2], atol=1e-6)
    assert sum(p.numel() for p in model.parameters()) == 48 * 8 + 8 + 8 * 10 + 10
