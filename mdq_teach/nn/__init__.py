"""The torch part of mdq_teach: one optimizer for every quantization method, and its helpers.

``make_optimizer`` builds a :class:`QuantOptimizer` for any method of ``METHODS``;
``method_table()`` lists every method's space, projection, route, rounding and the variant it
follows (paper or released code) from the registry;
``recompute_bn_stats`` refreshes BatchNorm statistics after rounding. Models, data and the
training loop are imported on demand as ``mdq_teach.nn.models``, ``mdq_teach.nn.data`` and
``mdq_teach.nn.train``.
"""

from .batchnorm import recompute_bn_stats
from .optim import QuantOptimizer, make_optimizer
from .registry import METHODS, method_table

__all__ = ["METHODS", "QuantOptimizer", "make_optimizer", "method_table", "recompute_bn_stats"]
