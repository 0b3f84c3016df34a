"""The torch part of mdq_teach: one optimizer for every quantization method, and its helpers.

``QuantOptimizer(params, projection=Tanh(), route=StraightThrough(), base=torch.optim.Adam,
beta_schedule=BetaSchedule(1.0, 1.02, 200))`` trains with any projection and route (the parts
in :mod:`mdq_teach.nn.quantize`); ``make_optimizer`` builds the pair of any method of ``METHODS``
by name;
``method_table()`` lists every method's space, projection, route, rounding and the variant it
follows (paper or released code) from the registry;
``recompute_bn_stats`` refreshes BatchNorm statistics after rounding. Models, data and the
training loop are imported on demand as ``mdq_teach.nn.models``, ``mdq_teach.nn.data`` and
``mdq_teach.nn.trainer``.
"""

from mdq_teach._torch_missing import require_torch

require_torch()  # before any submodule: without torch, one message naming the extra and the wheel

from .batchnorm import recompute_bn_stats  # noqa: E402
from .optim import QuantOptimizer, make_optimizer  # noqa: E402
from .quantize import (  # noqa: E402
    BinaryRelax,
    Cancel,
    ChainRule,
    Hard,
    Identity,
    KeptDualMirror,
    Linear,
    Mirror,
    ProxStep,
    Softmax,
    StraightThrough,
    Tanh,
)
from .registry import METHODS, build, method_table  # noqa: E402
from .schedules import BetaSchedule  # noqa: E402

__all__ = [
    "METHODS",
    "BetaSchedule",
    "BinaryRelax",
    "Cancel",
    "ChainRule",
    "Hard",
    "Identity",
    "KeptDualMirror",
    "Linear",
    "Mirror",
    "ProxStep",
    "QuantOptimizer",
    "Softmax",
    "StraightThrough",
    "Tanh",
    "build",
    "make_optimizer",
    "method_table",
    "recompute_bn_stats",
]
