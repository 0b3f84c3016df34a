"""The paper's chosen hyperparameters (Appendix B, Tables 8, 9 and 10) as data.

``paper_preset(dataset, arch, method, levels)`` returns the values for one run; ``train.py`` starts
from ``PROTOCOL`` (docs/design.md §4, the paper's Table 6), applies the preset, then the user's
overrides. Tables 8 and 10 are binary ({-1, 1}), Table 9 ternary ({-1, 0, 1}). A "-" in a table
means the method has no such hyperparameter (BC has no beta) or no schedule (an lr_scale of "-"
is stored as 1.0: the learning rate is never decayed).

Where the tables are silent the protocol default is used, and ``paper_preset`` says so in the
returned ``"notes"``:

* Table 8 has no REF (float) column. The float network does not depend on the quantization levels
  (Tables 1 and 5 report the same REF accuracies), so binary REF runs take Table 9's REF column:
  SGD with momentum 0.9, weight decay 1e-4.
* No table gives the cap on beta ("an arbitrarily chosen maximum value", Sec. 3.3), the annealing
  start (beta = 1, Sec. 3.3 requires beta >= 1) or the lr interval (30k, in every table caption).
* For PQ, the tables' beta_scale is the regularisation rate of ProxQuant: lambda_t = rate * t
  (stored here as ``pq_lambda``). PQ* (float FC, first conv and shortcuts) is not a preset: this
  package quantizes every parameter.
* TinyImageNet columns are omitted (the data set is not supported here).
"""

from __future__ import annotations

import math

# The schedules lived here before they had their own module; kept importable from here.
from .schedules import (  # noqa: F401
    BETA_ROUNDINGS,
    BetaSchedule,
    ceil_beta_schedule,
    floor_beta_schedule,
)

PROTOCOL = {
    "batch_size": 128,
    "iterations": 100_000,
    "lr_interval": 30_000,
    "base": "adam",
    "weight_decay": 0.0,
    "momentum": 0.0,
    "beta_init": 1.0,
    "beta_max": math.inf,
    "eval_interval": 1000,
}
PROTOCOL_SOURCE = "docs/design.md §4; paper Table 6 (b = 128, K = 100k) and Tables 8-10 captions"

# Row order of every table block: learning_rate, lr_scale, beta_scale, beta_scale_interval
# (+ weight_decay in Tables 9 and 10). None is the tables' "-".
_COLUMNS = ("lr", "lr_scale", "beta_scale", "beta_scale_interval")
_TABLE8 = {  # binary, Adam, weight decay 0
    ("cifar10", "resnet18"): {
        "md-softmax": (0.001, 0.2, 1.02, 200),
        "md-tanh": (0.001, 0.3, 1.01, 100),
        "md-softmax-s": (0.001, 0.3, 1.02, 200),
        "md-tanh-s": (0.001, 0.3, 1.02, 200),
        "pmf": (0.001, 0.3, 1.1, 1000),
        "gd-tanh": (0.001, 0.3, 1.1, 1000),
        "bc": (0.001, 0.3, None, None),
        "pq": (0.01, 0.5, 0.0001, None),
    },
    ("cifar100", "resnet18"): {
        "md-softmax": (0.001, 0.2, 1.05, 500),
        "md-tanh": (0.001, 0.3, 1.05, 500),
        "md-softmax-s": (0.001, 0.2, 1.1, 200),
        "md-tanh-s": (0.001, 0.2, 1.2, 500),
        "pmf": (0.001, 0.3, 1.01, 100),
        "gd-tanh": (0.001, 0.5, 1.01, 100),
        "bc": (0.001, 0.2, None, None),
        "pq": (0.1, None, 0.001, None),
    },
    ("cifar10", "vgg16"): {
        "md-softmax": (0.01, 0.2, 1.05, 500),
        "md-tanh": (0.001, 0.3, 1.1, 1000),
        "md-softmax-s": (0.001, 0.3, 1.2, 2000),
        "md-tanh-s": (0.001, 0.2, 1.2, 2000),
        "pmf": (0.001, 0.5, 1.05, 500),
        "gd-tanh": (0.001, 0.3, 1.1, 1000),
        "bc": (0.0001, 0.3, None, None),
        "pq": (0.01, 0.5, 0.0001, None),
    },
    ("cifar100", "vgg16"): {
        "md-softmax": (0.001, 0.3, 1.01, 100),
        "md-tanh": (0.001, 0.3, 1.05, 500),
        "md-softmax-s": (0.0001, 0.2, 1.2, 500),
        "md-tanh-s": (0.001, 0.5, 1.05, 500),
        "pmf": (0.0001, 0.5, 1.02, 200),
        "gd-tanh": (0.001, 0.5, 1.1, 1000),
        "bc": (0.0001, 0.2, None, None),
        "pq": (0.01, 0.5, 0.0001, None),
    },
}
_COLUMNS_WD = (*_COLUMNS, "weight_decay")
_TABLE9 = {  # ternary, Adam except REF (SGD, momentum 0.9)
    ("cifar10", "resnet18"): {
        "float": (0.1, 0.3, None, None, 0.0001),
        "md-softmax-s": (0.001, 0.3, 1.05, 500, 0.0),
        "md-tanh-s": (0.01, 0.2, 1.2, 1000, 0.0),
        "gd-tanh": (0.01, 0.5, 1.02, 500, 0.0),
        "pq": (0.01, 0.3, 0.0001, None, 0.0),
    },
    ("cifar100", "resnet18"): {
        "float": (0.1, 0.1, None, None, 0.0001),
        "md-softmax-s": (0.001, 0.1, 1.1, 100, 0.0),
        "md-tanh-s": (0.001, 0.5, 1.1, 500, 0.0),
        "gd-tanh": (0.01, 0.5, 1.02, 1000, 0.0),
        "pq": (0.01, 0.2, 0.0001, None, 0.0),
    },
    ("cifar10", "vgg16"): {
        "float": (0.1, 0.2, None, None, 0.0001),
        "md-softmax-s": (0.001, 0.3, 1.05, 500, 0.0),
        "md-tanh-s": (0.01, 0.3, 1.1, 1000, 0.0),
        "gd-tanh": (0.01, 0.3, 1.01, 500, 0.0),
        "pq": (0.01, None, 1e-07, None, 0.0),
    },
    ("cifar100", "vgg16"): {
        "float": (0.1, 0.2, None, None, 0.0001),
        "md-softmax-s": (0.0001, 0.3, 1.05, 100, 0.0),
        "md-tanh-s": (0.001, 0.5, 1.1, 500, 0.0),
        "gd-tanh": (0.01, 0.2, 1.05, 2000, 0.0),
        "pq": (0.01, None, 0.0001, None, 0.0),
    },
}
_TABLE10 = {  # binary MobileNetV2, Adam except REF (SGD, momentum 0.9)
    ("cifar10", "mobilenetv2"): {
        "float": (0.01, 0.5, None, None, 0.0001),
        "bc": (0.001, 0.5, None, None, 0.0),
        "md-softmax-s": (0.01, 0.3, 1.1, 1000, 0.0),
        "md-tanh-s": (0.01, 0.2, 1.2, 2000, 0.0),
    },
    ("cifar100", "mobilenetv2"): {
        "float": (0.01, 0.5, None, None, 0.0001),
        "bc": (0.001, 0.2, None, None, 0.0),
        "md-softmax-s": (0.01, 0.1, 1.1, 500, 0.0),
        "md-tanh-s": (0.01, 0.1, 1.02, 100, 0.0),
    },
}
# SGD with momentum 0.9 for REF: the captions of Tables 9 and 10.
_REF_BASE = {"base": "sgd", "momentum": 0.9}


def _row(values, columns, method):
    out = {}
    for key, value in zip(columns, values, strict=True):
        if value is None:
            if key == "lr_scale":
                out[key] = 1.0
            continue
        out[key] = value
    if method == "pq" and "beta_scale" in out:
        out["pq_lambda"] = out.pop("beta_scale")
    if method == "float":
        out.update(_REF_BASE)
    return out


def _levels_kind(levels) -> str:
    levels = tuple(float(v) for v in levels)
    if levels == (-1.0, 1.0):
        return "binary"
    if levels == (-1.0, 0.0, 1.0):
        return "ternary"
    return "other"


def available(levels=(-1, 1)) -> list[tuple[str, str, str]]:
    """Every (dataset, arch, method) the paper's tables give for these levels."""
    kind = _levels_kind(levels)
    out = []
    for table in {"binary": (_TABLE8, _TABLE10), "ternary": (_TABLE9,)}.get(kind, ()):
        for (dataset, arch), methods in table.items():
            out += [(dataset, arch, m) for m in methods]
    if kind == "binary":  # REF for ResNet-18/VGG-16 borrowed from Table 9, see the module notes
        out += [(d, a, "float") for (d, a) in _TABLE9]
    return sorted(set(out))


def paper_preset(dataset: str, arch: str, method: str, levels=(-1, 1)) -> dict:
    """The paper's hyperparameters for one run, with ``"source"`` and ``"notes"`` entries.

    Raises ``ValueError`` listing the available combinations when the tables have no entry.
    """
    kind = _levels_kind(levels)
    key = (dataset, arch)
    notes = []
    if kind == "binary" and key in _TABLE8 and method in _TABLE8[key]:
        values, source = _row(_TABLE8[key][method], _COLUMNS, method), "Table 8"
        values["weight_decay"] = 0.0
    elif kind == "binary" and key in _TABLE10 and method in _TABLE10[key]:
        values, source = _row(_TABLE10[key][method], _COLUMNS_WD, method), "Table 10"
    elif kind == "binary" and method == "float" and key in _TABLE9:
        values, source = _row(_TABLE9[key][method], _COLUMNS_WD, method), "Table 9 (REF)"
        notes.append("Table 8 has no REF column; the float network's values come from Table 9")
    elif kind == "ternary" and key in _TABLE9 and method in _TABLE9[key]:
        values, source = _row(_TABLE9[key][method], _COLUMNS_WD, method), "Table 9"
    else:
        combos = ", ".join("/".join(c) for c in available(levels)) or "none"
        raise ValueError(
            f"the paper gives no hyperparameters for dataset={dataset!r}, arch={arch!r}, "
            f"method={method!r}, levels={tuple(levels)}; available: {combos}"
        )
    notes.append(
        "beta_init=1, beta_max=inf (no cap given), lr_interval=30000, batch_size=128, "
        "iterations=100000 are the protocol defaults"
    )
    return {**values, "source": f"Ajanthan et al. (2021), Appendix B, {source}", "notes": notes}
