"""BatchNorm statistics for the rounded network (docs/design.md §4, known pitfalls).

Running means and variances collected while training with soft weights describe the soft network;
after rounding, the activations change, so evaluation first recomputes the statistics of the
rounded network on some training batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable, device=None) -> int:
    """Reset every BatchNorm layer's running statistics and recompute them over ``batches``.

    Each batch is an input tensor or a tuple/list whose first element is the input. The statistics
    are the cumulative average over the batches (``momentum=None``), computed in train mode without
    gradients; the modules' training flags and momenta are restored afterwards. Returns the number
    of batches seen. A model without BatchNorm layers is left as it is.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    for m in layers:
        if not m.track_running_stats:
            raise ValueError(f"{m} has track_running_stats=False: there are no statistics to set")
        m.reset_running_stats()
        m.momentum = None
    seen = 0
    try:
        model.train()
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            if device is not None:
                x = x.to(device)
            model(x)
            seen += 1
    finally:
        for m, training in modes.items():
            m.training = training
        for m, momentum in momenta.items():
            m.momentum = momentum
    if seen == 0:
        raise ValueError("batches must yield at least one batch to recompute BatchNorm statistics")
    return seen
