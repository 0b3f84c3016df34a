"""The method registry: every training method as a (projection, route) pair.

Each entry names parts defined once in :mod:`mdq_teach.nn.quantize`; :func:`build` turns a name
and its options into the projection and route objects ``QuantOptimizer`` takes, so adding a
method means adding an entry here (and, if it is new, a projection or a route there).
:func:`method_table` reads the entries, so the book's comparison table is generated from the code
that runs, never typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .quantize import PROJECTIONS, ROUTES, Projection, Route


@dataclass(frozen=True)
class Method:
    name: str
    projection: str | None  # key of quantize.PROJECTIONS; None for float or a quantizer= choice
    route: str | None  # key of quantize.ROUTES; None for float training
    variant: str = "paper"  # which original the default behaviour follows, and the options
    # make_optimizer's flat options that configure this method's route: option -> route argument
    options: dict[str, str] = field(default_factory=dict)
    # whether beta (the schedule's arguments) means anything to the method's command line
    anneals: bool = True


# ProxConnect's quantizer= choices, each a projection of quantize.PROJECTIONS.
QUANTIZERS: dict[str, str] = {
    "hard": "hard",
    "linear": "linear",
    "binaryrelax": "binaryrelax",
    "tanh": "tanh",
}

REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method("float", None, None, "base optimizer as in torch", anneals=False),
        Method(
            "bc", "hard", "cancel",
            "paper (gradient zeroed outside [q_min, q_max]; bc_clip_grad=False: no cancellation)",
            {"bc_clip_grad": "clip"}, anneals=False,
        ),
        Method(
            "pq", "identity", "prox",
            "released code: clamped to [q_min, q_max] after each prox step (pq_clamp=False: the "
            "paper's bare prox); L2 regulariser (x - q)^2",
            # anneals stays True although PQ has no beta: its command line has always taken the
            # beta flags (the paper's tables give PQ's lambda rate in the beta_scale row).
            {"pq_reg": "reg", "pq_lambda": "lam", "pq_clamp": "clamp"},
        ),
        Method(
            "pmf", "softmax", "chain",
            "paper: softmax Jacobian (pmf_jacobian='released': beta (I - u u^T), released code)",
            {"pmf_jacobian": "jacobian"},
        ),
        Method("gd-tanh", "tanh", "chain", "paper"),
        Method("md-tanh", "tanh", "mirror-dual", "paper (Eq. 15)"),
        Method("md-tanh-s", "tanh", "ste", "paper (Eq. 23)"),
        Method("md-softmax", "softmax", "mirror-dual", "paper (Eq. 20)"),
        Method("md-softmax-s", "softmax", "ste", "paper (Eq. 23)"),
        Method("proxconnect", None, "ste", "paper (ProxConnect abstract)"),
    )
}

METHODS: tuple[str, ...] = tuple(REGISTRY)


def get_method(method: str) -> Method:
    """Registry entry for ``method``; a ValueError lists the valid names otherwise."""
    if method not in REGISTRY:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return REGISTRY[method]


def takes_quantizer(method: str) -> bool:
    """Whether ``method`` leaves its projection to a ``quantizer=`` choice (ProxConnect)."""
    entry = get_method(method)
    return entry.route is not None and entry.projection is None


def projection_key(method: str, quantizer: str | None) -> str | None:
    """Projection used by ``method``, checking ``quantizer`` (only ProxConnect takes one)."""
    entry = get_method(method)
    if takes_quantizer(method):
        if quantizer is None:
            return QUANTIZERS["hard"]
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {tuple(QUANTIZERS)}, got {quantizer!r}")
        return QUANTIZERS[quantizer]
    if quantizer is not None:
        takers = " or ".join(repr(m) for m in METHODS if takes_quantizer(m))
        raise ValueError(
            f"quantizer= is only accepted with method {takers}, got method {method!r} "
            f"with quantizer {quantizer!r}"
        )
    return entry.projection


def build(
    method: str, quantizer: str | None = None, **options
) -> tuple[Projection | None, Route | None]:
    """The projection and route of ``method``; ``options`` are make_optimizer's flat options
    (``pq_lambda``, ``pmf_jacobian``, ...), of which those of the method's route are passed to
    it and the rest are ignored. (None, None) for float training."""
    entry = get_method(method)
    key = projection_key(method, quantizer)
    for other in REGISTRY.values():  # an option the method ignores is still checked
        given = {arg: options[name] for name, arg in other.options.items() if name in options}
        if given and other is not entry:
            ROUTES[other.route](**given)
    if entry.route is None:
        return None, None
    args = {arg: options[name] for name, arg in entry.options.items() if name in options}
    return PROJECTIONS[key](), ROUTES[entry.route](**args)


BETA_SCHEDULE_NOTE = (
    "beta_t = beta_0 s^floor(t/I) by default; beta_schedule='ceil' (the authors' released code, "
    "--preset paper) uses beta_0 s^ceil(t/I)"
)


def method_table() -> list[dict[str, str]]:
    """One row per method: {method, space, projection, route, rounding, variant}, read from the
    registry. ``variant`` says which original (paper or released code) the default follows and
    which option selects the other; the beta schedule of every annealed method is described by
    ``BETA_SCHEDULE_NOTE``."""
    rows = []
    for entry in REGISTRY.values():
        if entry.route is None:
            rows.append(
                dict(
                    method=entry.name,
                    space="w",
                    projection="none",
                    route="base optimizer step on w",
                    rounding="none",
                    variant=entry.variant,
                )
            )
            continue
        if entry.projection is None:
            choices = "; ".join(
                f"{name}: {PROJECTIONS[key].description}" for name, key in QUANTIZERS.items()
            )
            projection, space = f"Q_beta(theta), quantizer= ({choices})", "w"
        else:
            cls = PROJECTIONS[entry.projection]
            projection, space = cls.description, cls.space
        rows.append(
            dict(
                method=entry.name,
                space=space,
                projection=projection,
                route=ROUTES[entry.route].description,
                rounding="argmax over levels" if space == "u" else "nearest level (sign(0) = +1)",
                variant=entry.variant,
            )
        )
    return rows


def flat_option_names() -> dict[str, str]:
    """Route argument -> the flat option of make_optimizer that sets it (for messages)."""
    return {arg: name for m in REGISTRY.values() for name, arg in m.options.items()}
