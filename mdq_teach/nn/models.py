"""The paper's networks for 32x32 inputs, and a small convnet for 28x28 Fashion-MNIST.

Appendix B.4 of the paper: VGG-16 (Simonyan and Zisserman, 2015) with two 512-unit fully connected
layers and no dropout, ResNet-18 (He et al., 2016) with a 3x3 stride-1 stem and no max-pool, and
MobileNetV2 (Sandler et al., 2018), all adapted to CIFAR; ReLU and BatchNorm with no learnable
parameters in every quantized network (only the float reference, REF, keeps BatchNorm's scale and
shift). Every learnable parameter that remains (first convolution, last linear layer, biases) is
quantized, so a quantized model's ``parameters()`` are exactly what the optimizer binarizes.

Initialisation (the protocol of docs/design.md §4): Xavier-uniform for every matrix and kernel,
N(0, 0.1^2) for every bias. The layer layout follows the public code the paper's baselines used
(kuangliu's CIFAR models, as adapted in the PMF repository): VGG convolutions carry biases, ResNet
and MobileNetV2 convolutions do not (a BatchNorm follows each one and would cancel a bias).
"""

from __future__ import annotations

import torch
from torch import nn

ARCHS = ("vgg16", "resnet18", "mobilenetv2", "smallconv", "mlp")
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# MobileNetV2 stages (expansion t, channels c, blocks n, first stride s), Table 2 of Sandler et al.,
# with the second stage's stride 2 -> 1 and a stride-1 stem for 32x32 inputs (4x4 before pooling).
MOBILENETV2_CFG = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _bn(channels: int, affine: bool, dim: int = 2) -> nn.Module:
    return (nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d)(channels, affine=affine)


def init_paper_(model: nn.Module) -> nn.Module:
    """The paper's initialisation in place: Xavier-uniform kernels and matrices, N(0, 0.1^2) biases.

    BatchNorm's own scale and shift (REF networks only) keep torch's (1, 0): they are not weights
    of the quantized problem, and a scale drawn near 0 would silence the float network.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.1)
    return model


class VGG16(nn.Module):
    """VGG-16 for 32x32 inputs: 13 conv3x3-BN-ReLU layers with 5 max-pools, then 512-512-classes."""

    def __init__(self, num_classes=10, in_channels=3, quantized=True):
        super().__init__()
        affine = not quantized
        layers, c = [], in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), _bn(v, affine), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512, 512),
            _bn(512, affine, dim=1),
            nn.ReLU(inplace=True),
            nn.Linear(512, 512),
            _bn(512, affine, dim=1),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )
        init_paper_(self)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (1x1 convolution when the shape changes)."""

    def __init__(self, c_in, c_out, stride, affine):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = _bn(c_out, affine)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = _bn(c_out, affine)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out, affine)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs: 3x3 stride-1 stem, no max-pool, four stages of two blocks."""

    def __init__(self, num_classes=10, in_channels=3, quantized=True):
        super().__init__()
        affine = not quantized
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = _bn(64, affine)
        blocks, c = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c, c_out, stride, affine), BasicBlock(c_out, c_out, 1, affine)]
            c = c_out
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(512, num_classes)
        init_paper_(self)

    def forward(self, x):
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.linear(out.mean(dim=(2, 3)))  # global average pool (deterministic on CUDA)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion (skipped when t = 1), 3x3 depthwise, linear 1x1 projection;
    a residual connection when the block keeps the shape."""

    def __init__(self, c_in, c_out, stride, expansion, affine):
        super().__init__()
        hidden = c_in * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), _bn(hidden, affine), nn.ReLU6(True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            _bn(hidden, affine),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            _bn(c_out, affine),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 for 32x32 inputs (width 1): stride-1 stem, ``MOBILENETV2_CFG``, 1280 features."""

    def __init__(self, num_classes=10, in_channels=3, quantized=True):
        super().__init__()
        affine = not quantized
        layers = [nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False), _bn(32, affine), nn.ReLU6(True)]
        c = 32
        for t, c_out, n, s in MOBILENETV2_CFG:
            for i in range(n):
                layers.append(InvertedResidual(c, c_out, s if i == 0 else 1, t, affine))
                c = c_out
        layers += [nn.Conv2d(c, 1280, 1, bias=False), _bn(1280, affine), nn.ReLU6(True)]
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(1280, num_classes)
        init_paper_(self)

    def forward(self, x):
        return self.linear(self.features(x).mean(dim=(2, 3)))


class SmallConvNet(nn.Module):
    """A small network for the laptop chapter: two conv3x3-BN-ReLU-maxpool stages (``width`` and
    ``2 * width`` channels), a hidden linear layer with BN, and the classifier. For 28x28 inputs
    (any size divisible by 4 works). The default widths keep a step around 10 ms on one CPU core."""

    def __init__(self, num_classes=10, in_channels=1, quantized=True, width=8, hidden=32, size=28):
        super().__init__()
        affine = not quantized
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            _bn(width, affine),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            _bn(2 * width, affine),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(2 * width * (size // 4) ** 2, hidden, bias=False),
            _bn(hidden, affine, dim=1),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        init_paper_(self)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class MLP(nn.Module):
    """A network without BatchNorm: flatten, one hidden ReLU layer, the classifier. Its output for
    an image does not depend on the rest of the batch, which makes it the network on which
    multi-process training must match one process exactly (tests); not one of the paper's."""

    def __init__(self, num_classes=10, in_channels=1, quantized=True, hidden=32, size=28):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        init_paper_(self)

    def forward(self, x):
        return self.body(x)


_MODELS = {
    "vgg16": VGG16,
    "resnet18": ResNet18,
    "mobilenetv2": MobileNetV2,
    "smallconv": SmallConvNet,
    "mlp": MLP,
}


def get_model(
    name: str, num_classes: int = 10, in_channels: int = 3, quantized: bool = True, **kwargs
) -> nn.Module:
    """Build ``name`` (one of ``ARCHS``) with the paper's initialisation.

    ``quantized=True`` drops BatchNorm's affine parameters (the paper's quantized networks);
    ``False`` keeps them (the float reference REF). ``kwargs`` go to the model's constructor
    (``width``, ``hidden`` and the input ``size`` of ``smallconv``; ``hidden`` and ``size`` of
    ``mlp``).
    """
    if name not in _MODELS:
        raise ValueError(f"arch must be one of {ARCHS}, got {name!r}")
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if not (isinstance(in_channels, int) and in_channels >= 1):
        raise ValueError(f"in_channels must be an integer >= 1, got {in_channels!r}")
    return _MODELS[name](
        num_classes=num_classes, in_channels=in_channels, quantized=quantized, **kwargs
    )
