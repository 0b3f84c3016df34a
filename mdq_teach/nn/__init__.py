"""The torch part of mdq_teach: one optimizer for every quantization method, and its helpers.

``make_optimizer`` builds a :class:`QuantOptimizer` for any method of ``METHODS``;
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
from .registry import METHODS, method_table  # noqa: E402

__all__ = ["METHODS", "QuantOptimizer", "make_optimizer", "method_table", "recompute_bn_stats"]
