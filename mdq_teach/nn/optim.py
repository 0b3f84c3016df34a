"""One optimizer for every quantization method: aux state, projection, route, base optimizer.

The loop (docs/design.md §1), for each quantized parameter group:

1. the loss gradient ``g = df/dw`` arrives in the model's parameters (which always hold the primal
   weights the network computes with);
2. the route turns it into the gradient of an auxiliary tensor (``g`` itself for the STE of Eq. 23,
   ``g`` times the Jacobian of the projection for GD-tanh and PMF, ``g q`` in the lifted u-space);
3. an internal torch base optimizer (Adam in the paper) steps the auxiliary tensor, so its moments
   live on the auxiliary variables;
4. the route finishes (ProxQuant's proximal map, or the closed-form mirror step of Eq. 15 / Eq. 20)
   and the projection ``P_beta`` writes the new primal weights into the model;
5. beta is annealed,
   ``beta_t = min(beta_init * beta_scale ** (t // beta_scale_interval), beta_max)`` for the
   t-th call of ``step()`` (t = 0, 1, ...), so the first multiplication happens after
   ``beta_scale_interval`` steps.

All tensors of a group are flattened into one auxiliary tensor, so every step is a few vectorised
kernels whatever the number of layers, and the model architecture is untouched.

Initialisation (Algorithms 1 and 2 of the paper): the model's float weight ``w0`` is taken as the
auxiliary variable, ``x~ = w0`` in w-space and ``u~_lambda = q_lambda w0 - q_lambda^2 / 2`` in
u-space (a bump of probability centred on ``w0``); the model then holds ``P_beta_init(x~)``
(for ProxQuant, ``w0`` unchanged). Mirror methods (md-tanh, md-softmax) store that primal value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .quantize import PROJECTIONS, ROUTES, GroupState, as_levels
from .registry import get_method, projection_key

_BASE_NAMES = (
    "adam",
    "adamw",
    "sgd",
    "rmsprop",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "asgd",
    "rprop",
)
PQ_REGS = ("l1", "l2")
_OWN_GROUP_KEYS = ("params", "quantize", "param_names")


def resolve_base(base: str | type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """A torch.optim optimizer class from itself or its lower-case name."""
    if isinstance(base, type) and issubclass(base, torch.optim.Optimizer):
        return base
    names = {
        cls.__name__.lower(): cls for cls in vars(torch.optim).values() if isinstance(cls, type)
    }
    valid = tuple(n for n in _BASE_NAMES if n in names)
    if isinstance(base, str) and base in valid:
        return names[base]
    raise ValueError(
        f"base must be a torch.optim.Optimizer subclass or one of {valid}, got {base!r}"
    )


def _positive(name: str, value: float, allow_inf: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from err
    if not (value > 0 and (allow_inf or math.isfinite(value))):
        bound = "(0, inf]" if allow_inf else "(0, inf)"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return value


class QuantOptimizer(torch.optim.Optimizer):
    """Train a network with any quantization method of the registry; see :func:`make_optimizer`."""

    def __init__(
        self,
        params,
        method: str,
        lr: float = 1e-3,
        levels=(-1.0, 1.0),
        base: str | type[torch.optim.Optimizer] = "adam",
        beta_init: float = 1.0,
        beta_scale: float = 1.0,
        beta_scale_interval: int = 1,
        beta_max: float = math.inf,
        quantizer: str | None = None,
        pq_reg: str = "l1",
        pq_lambda: float = 1e-4,
        bc_clip_grad: bool = True,
        **base_kwargs,
    ):
        entry = get_method(method)
        key = projection_key(method, quantizer)
        self.method = method
        self.quantizer = quantizer if method != "proxconnect" else (quantizer or "hard")
        self._rounded = False
        self.levels = as_levels(levels)
        base_cls = resolve_base(base)
        if not isinstance(lr, torch.Tensor):
            _positive("lr", lr)
        self.beta_init = _positive("beta_init", beta_init)
        self.beta_scale = _positive("beta_scale", beta_scale)
        self.beta_max = _positive("beta_max", beta_max, allow_inf=True)
        if self.beta_max < self.beta_init:
            raise ValueError(f"beta_max must be >= beta_init={beta_init}, got {beta_max!r}")
        interval_ok = isinstance(beta_scale_interval, numbers.Integral) and not isinstance(
            beta_scale_interval, bool
        )
        if not interval_ok or beta_scale_interval < 1:
            raise ValueError(
                f"beta_scale_interval must be an int >= 1, got {beta_scale_interval!r}"
            )
        self.beta_scale_interval = int(beta_scale_interval)
        if pq_reg not in PQ_REGS:
            raise ValueError(f"pq_reg must be one of {PQ_REGS}, got {pq_reg!r}")
        self.pq_reg = pq_reg
        if not (
            isinstance(pq_lambda, numbers.Real) and math.isfinite(pq_lambda) and pq_lambda >= 0
        ):
            raise ValueError(f"pq_lambda must be in [0, inf), got {pq_lambda!r}")
        self.pq_lambda = float(pq_lambda)
        route_key = entry.route
        if method == "bc" and not bc_clip_grad:
            route_key = "ste"  # BinaryConnect without gradient cancellation
        self._step_count = 0
        self._ready = False
        super().__init__(params, dict(lr=lr, quantize=True))

        self._quant: list[GroupState | None] = []
        self._routes = []
        self._numels: list[list[int]] = []
        base_groups = []
        for gi, group in enumerate(self.param_groups):
            params_ = group["params"]
            hyper = {k: v for k, v in group.items() if k not in _OWN_GROUP_KEYS}
            self._numels.append([p.numel() for p in params_])
            if route_key is None or not group["quantize"] or not params_:
                self._quant.append(None)
                self._routes.append(None)
                base_groups.append(dict(params=list(params_), **hyper))
                continue
            dtypes = {(p.dtype, p.device) for p in params_}
            if len(dtypes) != 1 or not params_[0].is_floating_point():
                raise ValueError(
                    f"param_groups[{gi}]: quantized parameters must share one floating dtype and "
                    f"device, got {sorted(map(str, dtypes))}"
                )
            projection = PROJECTIONS[key](self.levels)
            route = ROUTES[route_key]()
            w0 = torch.cat([p.detach().reshape(-1) for p in params_])
            aux = projection.lift_init(w0)
            primal = projection(aux, self.beta_init) if route.stores_primal else None
            self._quant.append(GroupState(projection, aux, primal))
            self._routes.append(route)
            base_groups.append(dict(params=[aux], **hyper))
        self.base = base_cls(base_groups, **base_kwargs)
        # The outer groups show (and let schedulers change) every hyperparameter of the base.
        for group, inner in zip(self.param_groups, self.base.param_groups, strict=True):
            for k, v in inner.items():
                if k != "params":
                    group.setdefault(k, v)
        self._ready = True
        self.restore_()

    def add_param_group(self, param_group):
        if getattr(self, "_ready", False):
            raise ValueError("QuantOptimizer takes all parameter groups at construction")
        super().add_param_group(param_group)

    # ------------------------------------------------------------------------------------------
    # annealing

    @property
    def step_count(self) -> int:
        """Number of completed ``step()`` calls."""
        return self._step_count

    def beta_at(self, t: int) -> float:
        """Annealing value used by the t-th step (and by the weights the model holds before it)."""
        try:
            beta = self.beta_init * self.beta_scale ** (t // self.beta_scale_interval)
        except OverflowError:
            beta = math.inf
        beta = min(beta, self.beta_max)
        if not math.isfinite(beta):
            raise ValueError(
                f"beta overflowed at step {t} (beta_scale={self.beta_scale}, "
                f"beta_scale_interval={self.beta_scale_interval}); set a finite beta_max"
            )
        return beta

    @property
    def beta(self) -> float:
        """Current annealing value: the one the model's weights were projected with."""
        return self.beta_at(self._step_count)

    @property
    def reg_lambda(self) -> float:
        """ProxQuant's regularisation strength for the next step: ``pq_lambda * (t + 1)``."""
        return self.pq_lambda * (self._step_count + 1)

    # ------------------------------------------------------------------------------------------
    # the step

    def _check_finite(self, flat: list[torch.Tensor]) -> None:
        """Raise, naming the parameter, if any gradient holds NaN or inf.

        A sum is NaN or infinite whenever one of its terms is, so one reduction per tensor in
        ``flat`` (the concatenated gradient of each quantized group, and the float groups'
        gradients) screens everything; only a non-finite sum, rare and possibly a mere overflow
        of the sum, pays for the exact per-parameter search.
        """
        if not flat or bool(torch.stack([t.sum() for t in flat]).isfinite().all()):
            return
        for gi, group in enumerate(self.param_groups):
            names = group.get("param_names")
            for pi, p in enumerate(group["params"]):
                if p.grad is not None and not bool(p.grad.isfinite().all()):
                    name = names[pi] if names else f"param_groups[{gi}]['params'][{pi}]"
                    raise ValueError(
                        f"gradient of {name} (shape {tuple(p.shape)}) holds NaN or inf; "
                        "gradients must be finite"
                    )

    @torch.no_grad()
    def step(self, closure=None):
        """One step of the method for every group; returns the closure's loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._rounded:
            raise ValueError(
                "the model holds rounded weights: call restore_() (or evaluate inside "
                "`with opt.rounded():`) before step()"
            )
        # Gather every group's gradient first, so that a non-finite one is reported before any
        # state changes.
        flat: list[torch.Tensor] = []
        group_grads: list[torch.Tensor | None] = []
        for group, s in zip(self.param_groups, self._quant, strict=True):
            grads = [p.grad for p in group["params"]]
            if all(g is None for g in grads):
                group_grads.append(None)
                continue
            if s is None:
                flat.extend(g for g in grads if g is not None)
                group_grads.append(None)
                continue
            # A parameter without a gradient takes part with gradient zero.
            g = torch.cat(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                    for p in group["params"]
                ]
            )
            flat.append(g)
            group_grads.append(g)
        self._check_finite(flat)
        beta = self.beta
        for group, inner, s, route, g in zip(
            self.param_groups,
            self.base.param_groups,
            self._quant,
            self._routes,
            group_grads,
            strict=True,
        ):
            for k, v in group.items():
                if k not in _OWN_GROUP_KEYS:
                    inner[k] = v
            if s is None:
                continue
            if g is None:
                s.aux.grad = None
                continue
            s.beta, s.lr, s.reg_strength, s.reg = (
                beta,
                float(group["lr"]),
                self.reg_lambda,
                self.pq_reg,
            )
            route.begin(s)
            s.aux.grad = route.aux_grad(s, s.projection.lift_grad(g))
        self.base.step()
        for s, route in zip(self._quant, self._routes, strict=True):
            if s is not None and s.aux.grad is not None:
                route.end(s)
                s.aux.grad = None
        self._step_count += 1
        self.restore_()
        return loss

    # ------------------------------------------------------------------------------------------
    # writing weights into the model

    def _write(self, gi: int, values: torch.Tensor) -> None:
        params = self.param_groups[gi]["params"]
        chunks = values.split(self._numels[gi])
        torch._foreach_copy_(params, [c.view_as(p) for c, p in zip(chunks, params, strict=True)])

    @torch.no_grad()
    def restore_(self) -> None:
        """Write the soft primal weights ``P_beta(aux)`` of every quantized group into the model."""
        beta = self.beta
        for gi, (s, route) in enumerate(zip(self._quant, self._routes, strict=True)):
            if s is not None:
                self._write(gi, s.projection.weights(route.primal(s, beta)))
        self._rounded = False

    @torch.no_grad()
    def round_(self) -> None:
        """Write every quantized parameter's rounded value (exactly a member of ``levels``).

        Nearest level in w-space (``sign`` with ``sign(0) = +1`` for two levels), the level of
        largest probability in u-space. The optimizer's state is untouched: :meth:`restore_` writes
        the soft weights back, and :meth:`step` refuses to run on rounded weights until it has.
        """
        beta = self.beta
        for gi, (s, route) in enumerate(zip(self._quant, self._routes, strict=True)):
            if s is not None:
                self._write(gi, s.projection.round(route.primal(s, beta)))
                self._rounded = True

    @contextmanager
    def rounded(self) -> Iterator[None]:
        """``with opt.rounded(): evaluate(model)`` runs the rounded network, then restores."""
        self.round_()
        try:
            yield
        finally:
            self.restore_()

    # ------------------------------------------------------------------------------------------
    # checkpoints

    def state_dict(self) -> dict:
        """Method, levels, step count, beta, group settings, auxiliary tensors, base state."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        aux = [None if s is None else {"aux": s.aux, "primal": s.primal} for s in self._quant]
        return dict(
            method=self.method,
            quantizer=self.quantizer,
            levels=list(self.levels),
            step=self._step_count,
            beta=self.beta,
            param_groups=groups,
            aux=aux,
            base=self.base.state_dict(),
        )

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict` and write the restored weights into the model."""
        mine = (self.method, self.quantizer, list(self.levels))
        theirs = (state_dict.get("method"), state_dict.get("quantizer"), state_dict.get("levels"))
        if tuple(theirs) != mine:
            raise ValueError(
                f"state_dict is for (method, quantizer, levels) = {theirs}, "
                f"this optimizer is {mine}"
            )
        saved_groups = state_dict["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [
            len(g["params"]) for g in self.param_groups
        ]:
            raise ValueError("state_dict has a different number of parameter groups or parameters")
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        for s, saved in zip(self._quant, state_dict["aux"], strict=True):
            if (s is None) != (saved is None):
                raise ValueError("state_dict quantizes a different set of parameter groups")
            if s is not None:
                s.aux.copy_(saved["aux"])
                if s.primal is not None:
                    s.primal.copy_(saved["primal"])
        self.base.load_state_dict(state_dict["base"])
        self._step_count = int(state_dict["step"])
        self.restore_()


def make_optimizer(
    params,
    method: str,
    lr: float = 1e-3,
    levels=(-1.0, 1.0),
    base: str | type[torch.optim.Optimizer] = "adam",
    beta_init: float = 1.0,
    beta_scale: float = 1.0,
    beta_scale_interval: int = 1,
    beta_max: float = math.inf,
    quantizer: str | None = None,
    pq_reg: str = "l1",
    pq_lambda: float = 1e-4,
    bc_clip_grad: bool = True,
    **base_kwargs,
) -> QuantOptimizer:
    """Optimizer training ``params`` with quantization ``method`` (see ``METHODS``).

    Args:
        params: parameters, named parameters or parameter groups; a group with
            ``"quantize": False`` stays float and is trained by the base optimizer directly.
        method: "float", "bc", "pq", "pmf", "gd-tanh", "md-tanh", "md-tanh-s", "md-softmax",
            "md-softmax-s" or "proxconnect" (see :func:`mdq_teach.nn.method_table`).
        lr: learning rate eta of the base optimizer.
        levels: quantization levels (any sorted distinct values; 3+ levels use the shifted tanh of
            Eq. 21 and the d-level simplex).
        base: torch.optim class or lower-case name supplying the direction d (Adam in the paper).
        beta_init, beta_scale, beta_scale_interval, beta_max: the annealing schedule of beta.
        quantizer: ProxConnect's projection, "hard" (default), "linear", "binaryrelax" or "tanh".
        pq_reg, pq_lambda: ProxQuant's regulariser ("l1" or "l2") and rate; the t-th step
            (t = 1, 2, ...) uses strength ``pq_lambda * t``.
        bc_clip_grad: BinaryConnect's gradient cancellation where the stored weight is outside
            the hull of the levels.
        **base_kwargs: passed to the base optimizer (momentum, betas, weight_decay, ...).
    """
    return QuantOptimizer(
        params,
        method,
        lr=lr,
        levels=levels,
        base=base,
        beta_init=beta_init,
        beta_scale=beta_scale,
        beta_scale_interval=beta_scale_interval,
        beta_max=beta_max,
        quantizer=quantizer,
        pq_reg=pq_reg,
        pq_lambda=pq_lambda,
        bc_clip_grad=bc_clip_grad,
        **base_kwargs,
    )
