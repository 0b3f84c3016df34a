"""Where a quantized network's latent weights start: on the scale of the levels.

The paper initialises the latent with the float network's weights (Xavier-uniform, so
|w| < 0.08 in a ResNet-18). For two levels symmetric about 0 that is harmless: rounding is
``sign``, which ignores the scale, and BatchNorm after each layer makes the network ignore it too.
For any other levels the rounding thresholds sit at fixed points between the levels: with
Q = {-1, 0, 1} every weight with |w| < 1/2 rounds to 0, so every layer of a freshly initialised
network rounds to all zeros, and an optimizer such as Adam, which moves a latent by about ``lr``
per step, needs hundreds of steps of one sign before a single weight crosses 1/2. Such a run ends
as a constant network at chance accuracy.

``"levels"`` therefore maps each tensor's initial weights affinely onto the levels' scale,
tensor by tensor: ``w -> c + w * s_Q / s_w``, with ``c`` the midpoint of the levels' range, ``s_Q``
the standard deviation of the levels (as a set of equally likely values) and ``s_w`` that of the
tensor. For Q = {-1, 0, 1} and Xavier-uniform weights the latents start uniform on about
[-1.41, 1.41]: about a third round to 0 and a third to each of -1 and +1, the spread of a ternary
network that uses all its levels. The float network it starts from is the same up to a scale per
layer, which BatchNorm removes. ``"weights"`` keeps the paper's ``latent = w``; ``"auto"`` picks
``"weights"`` for two levels symmetric about 0 (the paper's binary runs, bit for bit) and
``"levels"`` for every other set of levels. Why, in short: docs/design.md §4.
"""

from __future__ import annotations

import math

import torch

LATENT_INITS = ("auto", "levels", "weights")


def check_latent_init(latent_init) -> str:
    if latent_init not in LATENT_INITS:
        raise ValueError(f"latent_init must be one of {LATENT_INITS}, got {latent_init!r}")
    return latent_init


def sign_invariant(levels: tuple[float, ...]) -> bool:
    """Whether rounding to ``levels`` ignores a positive scale of the weights: two levels -a, a."""
    return len(levels) == 2 and levels[0] == -levels[1]


def scales_to_levels(latent_init: str, levels: tuple[float, ...]) -> bool:
    """Whether ``latent_init`` maps the initial weights onto the levels' scale for ``levels``."""
    check_latent_init(latent_init)
    return latent_init == "levels" or (latent_init == "auto" and not sign_invariant(levels))


def levels_spread(levels: tuple[float, ...]) -> tuple[float, float]:
    """(midpoint of the range, standard deviation) of the levels taken as equally likely values."""
    mean = math.fsum(levels) / len(levels)
    std = math.sqrt(math.fsum((q - mean) ** 2 for q in levels) / len(levels))
    return (levels[0] + levels[-1]) / 2, std


@torch.no_grad()
def to_levels_scale(w: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """``c + w * s_Q / s_w`` (module docstring); a new tensor. A tensor without spread (one
    element, or all equal) keeps its values around ``c``: there is no scale to match."""
    centre, spread = levels_spread(levels)
    w = w.detach()
    std = w.double().std(unbiased=False) if w.numel() > 1 else w.new_zeros((), dtype=torch.float64)
    if not (std > 0 and torch.isfinite(std)):
        return w + centre
    return (w * (spread / std).to(w.dtype)).add_(centre)
