"""One optimizer for every quantization method: latent state, projection, route, base optimizer.

The loop (docs/design.md §1), for each quantized parameter p:

1. the loss gradient ``g = df/dw`` arrives in ``p.grad`` (the parameters always hold the primal
   weights the network computes with);
2. the route turns it into the gradient of p's latent tensor ``opt.state[p]["latent"]`` (``g``
   itself for the STE of Eq. 23, ``g`` times the Jacobian of the projection for GD-tanh and PMF,
   ``g q`` in the lifted u-space);
3. an internal torch base optimizer (Adam in the paper) steps every latent at once (its fused
   kernel where torch has one for the device, else its foreach path), so its moments live on the
   latent variables (for two symmetric levels in u-space, on plane 1 only: plane 0 is its
   negation, see ``quantize.Softmax``);
4. the route finishes (ProxQuant's proximal map, or the closed-form mirror step of Eq. 15 / Eq. 20)
   and the projection ``P_beta`` is written in place into ``p``;
5. beta follows ``beta_schedule(t)`` for the t-th call of ``step()`` (t = 0, 1, ...).

torch-native behaviour:

* ``opt.state[p]`` holds ``"latent"`` next to the base optimizer's own entries; the mirror
  methods md-tanh and md-softmax keep the dual of their primal at the current beta as the latent
  (the primal is P_beta(latent), given by :meth:`QuantOptimizer.primal`), except md-tanh with 3+
  levels, which stores ``"primal"`` and re-derives the dual from it each step. With the base
  entries (``exp_avg``, ``step``, ...) in the same dict, ``state_dict()`` is torch's standard
  layout plus a ``"quant"`` entry of plain values; it holds
  only tensors, numbers, strings, lists, dicts, tuples and None and loads with
  ``torch.load(..., weights_only=True)``.
* Latents are float32 whatever the model's dtype (float64 stays float64): a bfloat16 model keeps
  every small update in its latent and sees ``P_beta(latent)`` rounded to bfloat16.
* A parameter with ``requires_grad=False`` or ``grad is None`` is skipped by ``step()``: neither
  its latent nor its weight moves (md-tanh and md-softmax only rescale their dual latent by
  beta_t / beta_t+1 when beta changes, about the levels' midpoint for tanh, so that it keeps
  naming the same, unmoved, primal).
* ``defaults`` and every param group carry the base optimizer's hyperparameters (``lr``,
  ``betas``, ``momentum``, ...), so any ``torch.optim.lr_scheduler`` (``OneCycleLR`` with its
  defaults included) drives the inner step.
* ``weight_decay`` is the base optimizer's and acts on the tensor the base optimizer steps: the
  latent x~ (md-*-s, gd-tanh, bc, proxconnect's theta), u~ (pmf, md-softmax-s), the weight x
  itself (pq, float), and, for the mirror methods, the dual point P_beta^{-1}(x) (atanh(x) / beta
  for md-tanh, capped at atanh(1 - eps) / beta; for md-softmax log(u) / beta, or
  (0, log(u_1 / u_0) / beta) with two levels, (-v, v) with v = log(u_1 / u_0) / (2 beta) with two
  symmetric levels, the log-probabilities capped at the log of the smallest normal number), at
  the step's beta.
* ``step()`` does not synchronise with the host. Non-finite gradients are not screened unless
  ``check_finite=True`` (one host sync per step; the error names the parameter). With
  ``torch.amp.GradScaler``, ``scaler.step(opt)`` skips steps whose gradients overflowed, as for
  any torch optimizer.
* NaN policy: a NaN or inf is never rounded to a level. Without ``check_finite`` a non-finite
  gradient enters the latent of its parameter at that step (screening it would cost a host sync
  per step); from there on the latent is NaN, and a sign or nearest-level rounding of NaN would
  be a valid-looking level (+1 for every weight). So :meth:`QuantOptimizer.round_` refuses
  non-finite latents or weights with a ``ValueError`` naming the parameter, and
  :meth:`QuantOptimizer.all_finite` gives a caller a device flag to read at its own host sync:
  the trainer (:mod:`mdq_teach.nn.trainer`) reads it with the loss once per logging interval and
  before each evaluation, and stops with a ``FloatingPointError`` naming the parameter.
* Weights loaded into the model after construction are taken up by
  :meth:`QuantOptimizer.reset_latents_from_params` (otherwise the next step overwrites them).
* DistributedDataParallel: build the optimizer *after* wrapping the model, so its latents are
  made from the weights DDP broadcast from rank 0; an optimizer built earlier must call
  ``reset_latents_from_params()`` after wrapping, or ranks start from different latents.

Initialisation (Algorithms 1 and 2 of the paper): the model's float weight ``w0`` (for levels
other than two symmetric ones, first mapped onto the levels' scale: ``latent_init``,
:mod:`mdq_teach.nn.latent_init`) is taken as the latent, ``x~ = w0`` in w-space and
``u~_k = q_k w0 - q_k^2 / 2`` in u-space (a bump of probability centred on ``w0``;
``u~_k = q_k w0`` for two symmetric levels, the same softmax); the model then holds
``P_beta_0(x~)`` (for ProxQuant, ``w0`` itself). The mirror methods take the dual of that point,
so a weight saturated at construction sits within a few units of roundoff (of the gap between
the levels) of its level.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.optim import optimizer as _torch_optimizer

from .latent_init import check_latent_init, scales_to_levels, to_levels_scale
from .quantize import PROJECTIONS, ROUTES, Projection, Route, StepContext, as_levels
from .registry import build, flat_option_names
from .schedules import BETA_ROUNDINGS, BetaSchedule

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
_OWN_GROUP_KEYS = ("params", "quantize", "param_names")
_STATE_KEYS = ("latent", "primal")


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


def check_lr(lr, name: str = "lr"):
    """A learning rate: a finite number > 0, or a one-element floating tensor holding one."""
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or not lr.is_floating_point():
            raise ValueError(f"{name} must be a one-element floating tensor, got {lr!r}")
        value = float(lr)  # construction only: one host sync
    elif isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        value = float(lr)
    else:
        raise ValueError(f"{name} must be a number in (0, inf), got {lr!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be in (0, inf), got {lr!r}")
    return lr


def _base_defaults(base_cls, lr, base_kwargs: dict) -> dict:
    """The base optimizer's hyperparameters (its constructor's defaults, then ``base_kwargs``)."""
    signature = inspect.signature(base_cls.__init__)
    accepted = {
        name: par.default
        for name, par in signature.parameters.items()
        if name not in ("self", "params") and par.kind not in (par.VAR_POSITIONAL, par.VAR_KEYWORD)
    }
    unknown = sorted(set(base_kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"{base_cls.__name__} does not take {unknown}; it takes {sorted(accepted)}"
        )
    defaults = {k: v for k, v in accepted.items() if v is not inspect.Parameter.empty}
    defaults.update(base_kwargs)
    defaults["lr"] = lr
    for key in ("weight_decay", "momentum", "eps", "dampening", "alpha", "lr_decay"):
        if key in base_kwargs:
            value = base_kwargs[key]
            ok = isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0
            if not ok:
                raise ValueError(f"{key} must be a number in [0, inf), got {value!r}")
    if "betas" in base_kwargs:
        betas = base_kwargs["betas"]
        ok = isinstance(betas, (tuple, list)) and len(betas) == 2 and all(
            isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas
        )
        if not ok:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    return defaults


class QuantOptimizer(torch.optim.Optimizer):
    """Train a network with a projection and a route around a torch base optimizer.

    ``QuantOptimizer(params, projection=Tanh(), route=KeptDualMirror(), base=torch.optim.Adam,
    beta_schedule=BetaSchedule(1.0, 1.02, 200), lr=1e-3)`` is MD-tanh; :func:`make_optimizer`
    builds the pair of a method of the registry by name. ``projection=None`` (with ``route=None``)
    trains every parameter in float with the base optimizer. ``levels`` are the quantization
    levels; ``latent_init`` where the latents start (see :func:`make_optimizer`);
    ``check_finite`` screens gradients at one host sync per step; anything else goes to the base
    optimizer.
    """

    def __init__(
        self,
        params,
        projection: Projection | None = None,
        route: Route | None = None,
        lr: float = 1e-3,
        levels=(-1.0, 1.0),
        base: str | type[torch.optim.Optimizer] = "adam",
        *,
        beta_schedule: Callable[[int], float] | None = None,
        check_finite: bool = False,
        latent_init: str = "auto",
        **base_kwargs,
    ):
        if (projection is None) != (route is None):
            raise ValueError("projection and route are given together, or neither (float)")
        if projection is not None and not isinstance(projection, Projection):
            raise ValueError(f"projection must be a Projection, got {projection!r}")
        if route is not None and not isinstance(route, Route):
            raise ValueError(f"route must be a Route, got {route!r}")
        self.levels = as_levels(levels)
        base_cls = resolve_base(base)
        check_lr(lr)
        beta_schedule = BetaSchedule() if beta_schedule is None else beta_schedule
        if not callable(beta_schedule):
            raise ValueError(f"beta_schedule must be callable, got {beta_schedule!r}")
        self.beta_schedule = beta_schedule
        if not isinstance(check_finite, bool):
            raise ValueError(f"check_finite must be True or False, got {check_finite!r}")
        self.check_finite = check_finite
        self.latent_init = check_latent_init(latent_init)
        self.route = route
        self.projection = None
        if projection is not None:
            self.projection = projection.bind(
                self.levels, one_plane=route.odd and base_cls in _odd_bases()
            )
            route.check(self.projection)
        # In a one-element list, not an int attribute: torch.compile of ``step`` drops an
        # assignment to an attribute it has read (seen with torch 2.13), but keeps this update.
        self._steps_done = [0]
        self._rounded = False
        self._soft_backup: list[torch.Tensor] | None = None
        self._grad_buffers: dict[torch.Tensor, torch.Tensor] = {}
        self._handles: dict[torch.Tensor, torch.Tensor] = {}
        self._projections: list = []
        self._routes: list = []
        self._base_groups: list[dict] = []
        self.base = None
        self.beta_at(0)  # a schedule that fails at once fails here

        defaults = _base_defaults(base_cls, lr, base_kwargs)
        defaults["quantize"] = True
        super().__init__(params, defaults)  # calls add_param_group for each group
        self.base = self._make_base(base_cls, self._base_groups)
        del self._base_groups
        self._adopt_float_state()
        self._write_all()

    def _setup_group(self, group: dict) -> dict:
        """Latents (and gradient buffers) for one new parameter group; the group the base
        optimizer steps in its place."""
        gi = len(self._projections)
        check_lr(group["lr"], f"param_groups[{gi}]['lr']")
        hyper = {k: v for k, v in group.items() if k not in _OWN_GROUP_KEYS}
        if self.route is None or not group["quantize"]:
            self._projections.append(None)
            self._routes.append(None)
            return dict(params=list(group["params"]), **hyper)
        for pi, p in enumerate(group["params"]):
            if not p.is_floating_point():
                raise ValueError(
                    f"param_groups[{gi}]['params'][{pi}]: quantized parameters must be "
                    f"floating point, got {p.dtype}"
                )
        projection, route = self.projection, self.route
        beta = self.beta
        latents = []
        with torch.no_grad():
            for p in group["params"]:
                state = self.state[p]
                latent = projection.lift_init(self._initial_weights(p, _latent_dtype(p)))
                state["latent"] = latent
                if route.stores_primal_for(projection):
                    state["primal"] = projection(latent, beta)
                route.settle(projection, state, beta)
                # What the base optimizer steps: the latent, or the part of it that
                # determines the rest (one plane of an antisymmetric pair).
                handle = self._handles[latent] = projection.handle(latent)
                # Allocated once: a step writes the latent's gradient into it in place and,
                # under torch.compile, never rebinds .grad (dynamo breaks the graph on that).
                self._grad_buffers[latent] = handle.grad = torch.zeros_like(handle)
                latents.append(handle)
        self._projections.append(projection)
        self._routes.append(route)
        return dict(params=latents, **hyper)

    def _adopt_float_state(self) -> None:
        # Float parameters: the base optimizer's state *is* opt.state[p].
        for group, proj in zip(self.param_groups, self._projections, strict=True):
            if proj is None:
                for p in group["params"]:
                    self.state[p] = self.base.state[p]

    def _initial_weights(self, p: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The float weights a latent starts from: ``p`` itself, or mapped onto the levels' scale
        (``latent_init``, see :mod:`mdq_teach.nn.latent_init`)."""
        w = p.detach().to(dtype)
        if scales_to_levels(self.latent_init, self.levels):
            return to_levels_scale(w, self.levels)
        return w

    def _make_base(self, base_cls, base_groups) -> torch.optim.Optimizer:
        """The base optimizer, on its fused kernel where torch has one, else its foreach path."""
        explicit = {k for k in ("fused", "foreach") if self.defaults.get(k) is not None}
        tried = [{}]
        if not explicit:
            tried = [{"fused": True}, {"foreach": True}, {}] if "fused" in self.defaults else [
                {"foreach": True}, {}]  # fmt: skip
        for choice in tried:
            groups = [dict(g, **choice) for g in base_groups]
            try:
                base = base_cls(groups, **choice)
            except (RuntimeError, ValueError, TypeError):
                continue
            for group in self.param_groups:
                group.update(choice)
            self.defaults.update(choice)
            return base
        return base_cls(base_groups)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (``"quantize": False`` keeps it float), as torch's optimizers do: its
        latents start from its weights at the current beta; the model then holds its projection."""
        super().add_param_group(param_group)
        base_group = self._setup_group(self.param_groups[-1])
        if self.base is None:  # during construction: the base optimizer is made from them all
            self._base_groups.append(base_group)
            return
        self.base.add_param_group(base_group)
        self._adopt_float_state()
        beta = self.beta
        if self._projections[-1] is not None:
            with torch.no_grad():
                for p in self.param_groups[-1]["params"]:
                    self._routes[-1].write(self._projections[-1], self.state[p], p, beta)

    # ------------------------------------------------------------------------------------------
    # annealing

    @property
    def step_count(self) -> int:
        """Number of completed ``step()`` calls."""
        return self._steps_done[0]

    def beta_at(self, t: int) -> float:
        """Annealing value used by the t-th step (and by the weights the model holds before it)."""
        beta = self.beta_schedule(t)
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
            raise ValueError(f"beta_schedule({t}) must return a number, got {beta!r}")
        if not (0 < beta < math.inf):
            raise ValueError(f"beta_schedule({t}) must be in (0, inf), got {beta!r}")
        return beta

    @property
    def beta(self) -> float:
        """Current annealing value: the one the model's weights were projected with."""
        return self.beta_at(self._steps_done[0])

    # ------------------------------------------------------------------------------------------
    # the step

    def _check_finite(self) -> None:
        """Raise, naming the parameter, if any gradient holds NaN or inf (one host sync)."""
        grads = [
            p.grad for g in self.param_groups for p in g["params"] if p.grad is not None
        ]
        if not grads or bool(torch.stack([t.isfinite().all() for t in grads]).all()):
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
        """One step of the method for every parameter with a gradient; returns the closure's loss.

        No host synchronisation unless ``check_finite=True``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._rounded:
            raise ValueError(
                "the model holds rounded weights: call restore_() (or evaluate inside "
                "`with opt.rounded():`) before step()"
            )
        if self.check_finite:
            self._check_finite()
        t = self._steps_done[0]
        beta, beta_next = self.beta_at(t), self.beta_at(t + 1)
        compiling = torch.compiler.is_compiling()
        stepped = []
        for group, inner, proj, route in zip(
            self.param_groups, self.base.param_groups, self._projections, self._routes,
            strict=True,
        ):  # fmt: skip
            for k, v in group.items():
                if k not in _OWN_GROUP_KEYS:
                    inner[k] = v
            if compiling and inner.get("fused") and not isinstance(inner["lr"], torch.Tensor):
                # torch.compile does not trace fused kernels; it fuses the foreach path itself,
                # which keeps the same state (as torch's own compiled optimizers do).
                inner["fused"], inner["foreach"] = False, True
            if route is None:
                continue
            ctx = StepContext(t, beta, beta_next, group["lr"], self._grad_buffers, compiling)
            for p in group["params"]:
                state = self.state[p]
                handle = self._handles[state["latent"]]
                g = p.grad
                if g is None or not p.requires_grad:
                    if handle.grad is not None:
                        handle.grad = None  # the base optimizer skips it
                    route.skip(proj, state, ctx)
                    continue
                ctx.weight = p
                grad = route.grad(proj, state, g, ctx)
                if handle.grad is not grad:
                    handle.grad = grad
                stepped.append((p, state, proj, route, ctx))
        if compiling:
            # The base's step without torch's wrapper, whose graph breaks (there to keep a
            # standalone optimizer step an inference graph) would split this step; this step
            # already runs under no_grad. Its hooks run as the wrapper would run them.
            self._compiled_base_step()
        else:
            self.base.step()  # with its hooks (register_step_pre_hook / post_hook)
        base_state = self.base.state
        for p, state, proj, route, ctx in stepped:
            latent = state["latent"]
            handle = self._handles[latent]
            route.finish(proj, state, p, ctx)
            proj.sync(latent)
            if handle.grad is p.grad:
                # Eager steps hand p.grad on without a copy; rebind the buffer afterwards so the
                # model's gradient is not kept alive and a compiled step finds .grad in place.
                handle.grad = self._grad_buffers[latent]
            inner = base_state[handle]
            if inner is not state:
                # The base optimizer created its state at its first step: merge both into one
                # dict, so that opt.state[p] shows the latent and the moments together.
                inner.update(state)
                self.state[p] = inner
        self._steps_done[0] = t + 1
        return loss

    def _compiled_base_step(self) -> None:
        """The base optimizer's step and its hooks, without torch's wrapper (see :meth:`step`)."""
        base = self.base
        hooks = _torch_optimizer
        args, kwargs = (base,), {}
        for hook in (*hooks._global_optimizer_pre_hooks.values(),
                     *base._optimizer_step_pre_hooks.values()):  # fmt: skip
            hook(base, args, kwargs)
        inspect.unwrap(type(base).step)(base)
        for hook in (*base._optimizer_step_post_hooks.values(),
                     *hooks._global_optimizer_post_hooks.values()):  # fmt: skip
            hook(base, args, kwargs)

    # ------------------------------------------------------------------------------------------
    # writing weights into the model

    def _quantized(self) -> Iterator[tuple[torch.Tensor, dict, object, object]]:
        for group, proj, route in zip(
            self.param_groups, self._projections, self._routes, strict=True
        ):
            if route is not None:
                for p in group["params"]:
                    yield p, self.state[p], proj, route

    @torch.no_grad()
    def _write_all(self) -> None:
        beta = self.beta
        for p, state, proj, route in self._quantized():
            route.write(proj, state, p, beta)
        self._rounded = False
        self._soft_backup = None

    @torch.no_grad()
    def restore_(self) -> None:
        """Undo :meth:`round_`: the model gets back exactly the soft weights it held before.

        Without a preceding ``round_()`` it writes the soft weights ``P_beta(latent)`` (the stored
        primal for the mirror methods) of every quantized parameter.
        """
        if self._soft_backup is None:
            self._write_all()
            return
        params = [p for p, *_ in self._quantized()]
        torch._foreach_copy_(params, self._soft_backup)
        self._rounded = False
        self._soft_backup = None

    @torch.no_grad()
    def round_(self) -> None:
        """Write every quantized parameter's rounded value (exactly a member of ``levels``).

        Nearest level in w-space (``sign`` with ``sign(0) = +1`` for two levels), the level of
        largest probability in u-space. The optimizer's state is untouched; the soft weights are
        kept (one copy of the quantized parameters) until :meth:`restore_` writes them back, and
        :meth:`step` refuses to run on rounded weights until it has. A latent or soft weight
        holding NaN or inf is refused (``ValueError`` naming the parameter, nothing written):
        it has no nearest level (see the NaN policy in the module docstring). One host sync.
        """
        beta = self.beta
        items = list(self._quantized())
        primals = [route.primal(proj, state, beta) for _, state, proj, route in items]
        if items:
            flags = [
                torch.stack([t.isfinite().all() for t in (primal, state["latent"], p)]).all()
                for (p, state, _, _), primal in zip(items, primals, strict=True)
            ]
            finite = torch.stack([f.to(flags[0].device) for f in flags]).tolist()
            if not all(finite):
                bad = [self._param_name(p) for (p, *_), ok in zip(items, finite, strict=True)
                       if not ok]  # fmt: skip
                raise ValueError(
                    f"round_(): the latent weights of {bad[0]} hold NaN or inf"
                    + (f" (and {len(bad) - 1} more parameters)" if len(bad) > 1 else "")
                    + ", which round to no level; a non-finite gradient reached step() "
                    "(check_finite=True stops at the step that lets one in)"
                )
        if self._soft_backup is None:
            self._soft_backup = [p.detach().clone() for p, *_ in items]
        for (p, _, proj, _), primal in zip(items, primals, strict=True):
            p.copy_(proj.round(primal))
            self._rounded = True

    @torch.no_grad()
    def all_finite(self) -> torch.Tensor:
        """Whether every parameter and every latent is finite: a 0-d bool tensor on their device,
        computed without a host sync, for the caller to read at a sync it makes anyway."""
        tensors = [p for group in self.param_groups for p in group["params"]]
        tensors += [state[k] for _, state, _, _ in self._quantized() for k in _STATE_KEYS
                    if k in state]  # fmt: skip
        if not tensors:
            return torch.tensor(True)
        device = tensors[0].device
        return torch.stack([t.isfinite().all().to(device) for t in tensors]).all()

    @torch.no_grad()
    def nonfinite_parameters(self) -> list[torch.Tensor]:
        """The parameters whose weight or latent holds NaN or inf (host syncs: for the error
        path, after :meth:`all_finite` said there is one)."""
        states = {id(p): state for p, state, _, _ in self._quantized()}
        bad = []
        for group in self.param_groups:
            for p in group["params"]:
                state = states.get(id(p), {})
                tensors = [p] + [state[k] for k in _STATE_KEYS if k in state]
                if not all(bool(t.isfinite().all()) for t in tensors):
                    bad.append(p)
        return bad

    def _param_name(self, p: torch.Tensor) -> str:
        """``p``'s name from its group's ``param_names``, else its place in the groups."""
        for gi, group in enumerate(self.param_groups):
            for pi, q in enumerate(group["params"]):
                if q is p:
                    names = group.get("param_names")
                    return names[pi] if names else f"param_groups[{gi}]['params'][{pi}]"
        return "a parameter"

    @torch.no_grad()
    def primal(self, p: torch.Tensor) -> torch.Tensor:
        """The primal point of quantized parameter ``p`` at the current beta, a new tensor: x in
        w-space, the probabilities u (level axis first) in u-space; the stored primal where the
        method keeps one, else P_beta(latent) in the latent's precision. The model holds its
        weights, written by the step's own kernels (on the CPU in float32 the two-level tanh goes
        through the sigmoid), so they may differ from this in the last bit or two."""
        for q, state, proj, route in self._quantized():
            if q is p:
                return route.primal(proj, state, self.beta).clone()
        raise ValueError("p is not a quantized parameter of this optimizer")

    @contextmanager
    def rounded(self) -> Iterator[None]:
        """``with opt.rounded(): evaluate(model)`` runs the rounded network, then restores."""
        self.round_()
        try:
            yield
        finally:
            self.restore_()

    @torch.no_grad()
    def reset_latents_from_params(self, inverse: bool = False) -> None:
        """Take up the weights the model holds now (loaded after construction, or broadcast by DDP).

        ``inverse=False`` treats them as float weights and re-initialises every latent as at
        construction (x~ = w, u~_k = q_k w - q_k^2 / 2 or q_k w); the model then holds
        ``P_beta(x~)``.
        ``inverse=True`` treats them as this method's soft weights and inverts the projection
        (tanh, softmax with two levels, identity), so the model keeps them. The base optimizer's
        state of those parameters (moments) is cleared; the step count and beta are kept.
        """
        if self._rounded:
            raise ValueError("the model holds rounded weights: call restore_() first")
        beta = self.beta
        for p, state, proj, route in self._quantized():
            latent = state["latent"]
            if inverse:
                primal = proj.from_weights(p.detach().to(latent.dtype))
                latent.copy_(proj.inverse(primal, beta))
            else:
                latent.copy_(proj.lift_init(self._initial_weights(p, latent.dtype)))
                primal = proj(latent, beta)
            if route.stores_primal_for(proj):
                state["primal"].copy_(primal)
            route.settle(proj, state, beta)
            kept = {k: state[k] for k in _STATE_KEYS if k in state}
            self.base.state.pop(self._handles[latent], None)
            self.state[p] = kept
        self._write_all()

    # ------------------------------------------------------------------------------------------
    # checkpoints

    def state_dict(self) -> dict:
        """torch's layout (``state`` per parameter index, ``param_groups``) plus ``quant``.

        ``state[i]`` holds the latent (and primal) next to the base optimizer's entries;
        ``quant`` holds the :meth:`spec` (projection, route and their arguments, levels, beta
        schedule), the step count and beta. Only tensors and plain values:
        ``torch.load(path, weights_only=True)`` reads a checkpoint holding it.
        """
        sd = super().state_dict()
        sd["quant"] = dict(self.spec(), step=self._steps_done[0], beta=self.beta)
        return sd

    def spec(self) -> dict:
        """What this optimizer does, as plain values: a state_dict loads only into its like."""
        proj, route = self.projection, self.route
        schedule = getattr(self.beta_schedule, "spec", None)
        return dict(
            projection=None if proj is None else proj.name,
            projection_args=None if proj is None else proj.spec(),
            route=None if route is None else route.name,
            route_args=None if route is None else route.spec(),
            levels=list(self.levels),
            # A plain callable has no plain-value form: not saved, not checked.
            beta_schedule=schedule() if callable(schedule) else None,
        )

    @classmethod
    def from_state_dict(cls, params, state_dict: dict, base="adam", **kwargs) -> QuantOptimizer:
        """An optimizer rebuilt from a :meth:`state_dict`'s spec (projection, route, their
        arguments, levels, a :class:`BetaSchedule`), with the state loaded. The base optimizer
        class is not in the spec: pass ``base`` (its hyperparameters come from the groups)."""
        spec = state_dict.get("quant") or {}
        if "projection" not in spec:
            raise ValueError("state_dict has no projection and route to rebuild from")
        projection = route = None
        if spec["projection"] is not None:
            projection = PROJECTIONS[spec["projection"]](**spec["projection_args"])
            route = ROUTES[spec["route"]](**spec["route_args"])
        schedule = spec.get("beta_schedule")
        if schedule is not None:
            kwargs.setdefault("beta_schedule", BetaSchedule(**schedule))
        opt = cls(params, projection, route, levels=spec["levels"], base=base, **kwargs)
        opt.load_state_dict(state_dict)
        return opt

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict` bit for bit; write the restored weights into the model."""
        quant = state_dict.get("quant")
        if not isinstance(quant, dict):
            raise ValueError("state_dict has no 'quant' entry: not a QuantOptimizer state_dict")
        _check_spec(quant, self.spec())
        saved_groups = state_dict["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [
            len(g["params"]) for g in self.param_groups
        ]:
            raise ValueError("state_dict has a different number of parameter groups or parameters")
        saved_state = state_dict["state"]
        base_state, base_groups = {}, []
        for group, saved, route, proj in zip(
            self.param_groups, saved_groups, self._routes, self._projections, strict=True
        ):
            for p, index in zip(group["params"], saved["params"], strict=True):
                entry = dict(saved_state.get(index, {}))
                mine_state = self.state[p]
                if route is not None:
                    if "latent" not in entry:
                        raise ValueError("state_dict quantizes a different set of parameters")
                    _check_saved_layout(entry, mine_state, proj, index)
                    for k in _STATE_KEYS:
                        value = entry.pop(k, None)
                        if k in mine_state:
                            if value is None or value.shape != mine_state[k].shape:
                                raise ValueError(
                                    f"state_dict's {k!r} of parameter {index} does not match"
                                )
                            mine_state[k].copy_(value)
                elif "latent" in entry:
                    raise ValueError("state_dict quantizes a different set of parameters")
                if entry:
                    base_state[index] = entry
            hyper = {k: v for k, v in saved.items() if k not in ("quantize", "param_names")}
            base_groups.append(hyper)
        self.base.load_state_dict({"state": base_state, "param_groups": base_groups})
        for group, saved, route in zip(
            self.param_groups, saved_groups, self._routes, strict=True
        ):
            group.update({k: v for k, v in saved.items() if k not in ("params", "param_names")})
            for p in group["params"]:
                if route is None:
                    self.state[p] = self.base.state[p]
                    continue
                state = self.state[p]
                inner = self.base.state.get(self._handles[state["latent"]])
                if inner:
                    inner.update({k: state[k] for k in _STATE_KEYS if k in state})
                    self.state[p] = inner
                else:
                    self.state[p] = {k: state[k] for k in _STATE_KEYS if k in state}
        self._steps_done[0] = int(quant["step"])
        self._write_all()


def _check_spec(saved: dict, mine: dict) -> None:
    """Refuse a state_dict of another method (projection, route, their arguments, levels or
    beta schedule): it would not resume this run but start another from its state."""
    if "projection" not in saved:
        raise ValueError(
            "state_dict's 'quant' has no projection and route: it was written by an earlier "
            "version of mdq_teach (method names); restart the run"
        )
    differ = [k for k in mine if k != "beta_schedule" and saved.get(k) != mine[k]]
    if mine["beta_schedule"] is not None and saved.get("beta_schedule") is not None and (
        saved["beta_schedule"] != mine["beta_schedule"]
    ):
        differ.append("beta_schedule")
    if differ:
        alias = flat_option_names()
        args = {**(saved.get("route_args") or {}), **(mine["route_args"] or {})}
        named = [f"{a} (make_optimizer's {alias[a]})" for a in args if a in alias and (
            (saved.get("route_args") or {}).get(a) != (mine["route_args"] or {}).get(a))]
        raise ValueError(
            "state_dict is for another method: "
            + "; ".join(f"{k} {saved.get(k)!r} there, {mine[k]!r} here" for k in differ)
            + (f" (route arguments {', '.join(named)})" if named else "")
        )


def _check_saved_layout(entry: dict, mine: dict, proj, index) -> None:
    """Refuse a saved state whose layout this optimizer does not keep (written by a development
    version before the mirror methods kept their dual, or before two symmetric levels kept
    antisymmetric planes): loading it would change the run, not resume it."""
    stale = "it was written by an earlier version of mdq_teach; restart the run"
    if "primal" in entry and "primal" not in mine:
        raise ValueError(f"state_dict holds a 'primal' for parameter {index}; {stale}")
    latent = entry["latent"]
    if getattr(proj, "one_plane", False) and latent.shape == mine["latent"].shape and (
        not torch.equal(latent[0], -latent[1])
    ):
        raise ValueError(
            f"state_dict's latent of parameter {index} is not antisymmetric (u~_0 = -u~_1); {stale}"
        )
    # The base optimizer's tensors (moments) have the shape of what it steps: the latent, or
    # one plane of it (see quantize.Softmax). Another layout would be read out of bounds.
    stepped = tuple(proj.handle(mine["latent"]).shape)
    for key, value in entry.items():
        if key not in _STATE_KEYS and torch.is_tensor(value) and value.dim() > 0 and (
            tuple(value.shape) != stepped
        ):
            raise ValueError(
                f"state_dict's {key!r} of parameter {index} has shape {tuple(value.shape)}, "
                f"this optimizer steps a tensor of shape {stepped} (another base optimizer "
                "class, pmf_jacobian or levels wrote it)"
            )


def _odd_bases() -> tuple[type[torch.optim.Optimizer], ...]:
    """torch's elementwise optimizers: each maps a negated gradient history to the negated step
    (from a negated parameter), bit for bit, so one plane of an antisymmetric latent determines
    the other (see ``quantize.Softmax``). A user's own class is not assumed to."""
    return tuple(
        cls for cls in vars(torch.optim).values()
        if isinstance(cls, type) and cls.__name__.lower() in _BASE_NAMES
    )


def _latent_dtype(p: torch.Tensor) -> torch.dtype:
    """float32 for half-precision parameters, the parameter's own dtype from float32 up."""
    return torch.promote_types(p.dtype, torch.float32)


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
    *,
    beta_schedule: str | Callable[[int], float] = "floor",
    allow_decreasing_beta: bool = False,
    **options,
) -> QuantOptimizer:
    """Optimizer training ``params`` with quantization ``method`` (see ``METHODS``): the
    registry's projection and route for it, in a :class:`QuantOptimizer`.

    Args:
        params: parameters, named parameters or parameter groups; a group with
            ``"quantize": False`` stays float and is trained by the base optimizer directly.
        method: "float", "bc", "pq", "pmf", "gd-tanh", "md-tanh", "md-tanh-s", "md-softmax",
            "md-softmax-s" or "proxconnect" (see :func:`mdq_teach.nn.method_table`).
        lr: learning rate eta of the base optimizer (a number or a one-element tensor, > 0).
        levels: quantization levels (any sorted distinct values; 3+ levels use the shifted tanh of
            Eq. 21 and the d-level simplex).
        base: torch.optim class or lower-case name supplying the direction d (Adam in the paper).
            It runs fused where torch has a fused kernel for the device, else on its foreach
            path; pass ``fused=`` or ``foreach=`` to choose.
        beta_init, beta_scale, beta_scale_interval, beta_max: the annealing schedule of beta.
            ``beta_scale < 1`` is refused unless ``allow_decreasing_beta=True``.
        quantizer: ProxConnect's projection, "hard" (default), "linear", "binaryrelax" or "tanh".

    Keyword-only options (``**options``):
        beta_schedule: "floor" (default: beta_0 s^floor(t/I)), "ceil" (the authors' released
            code: beta_0 s^ceil(t/I)), both built from the four beta arguments, or any callable
            ``t -> beta`` (see :mod:`mdq_teach.nn.schedules`).
        allow_decreasing_beta: accept ``beta_scale < 1``.
        pq_reg, pq_lambda: ProxQuant's regulariser ("l1": |x - q|, "l2": (x - q)^2) and rate;
            the t-th step (t = 1, 2, ...) uses strength ``lr * pq_lambda * t``.
        bc_clip_grad: BinaryConnect's gradient cancellation where the stored weight is outside
            [q_min, q_max].
        pq_clamp: clamp ProxQuant's weights to [q_min, q_max] after every proximal step (True,
            as the released code does) or not (the bare proximal map).
        pmf_jacobian: "paper" (the softmax Jacobian) or "released" (PMF's code: beta (I - u u^T)).
        check_finite: raise, naming the parameter, on a NaN or inf gradient (one host sync per
            step; off by default).
        latent_init: where the latents start: "weights" (the paper: the float weights),
            "levels" (each tensor mapped onto the levels' scale) or "auto" (default: "weights"
            for two levels -a, a, "levels" otherwise; see :mod:`mdq_teach.nn.latent_init`, why
            ternary networks otherwise round to all zeros).
        The method-only options above configure the method's route (``ProxStep(reg, lam,
        clamp)``, ``Cancel(clip)``, ``ChainRule(jacobian)``); given to another method they are
        checked and ignored.
        anything else: the base optimizer's own arguments (momentum, betas, weight_decay, ...).
    """
    flat = flat_option_names().values()
    route_options = {k: options.pop(k) for k in list(options) if k in flat}
    projection, route = build(method, quantizer, **route_options)
    if not isinstance(allow_decreasing_beta, bool):
        raise ValueError(
            f"allow_decreasing_beta must be True or False, got {allow_decreasing_beta!r}"
        )
    if isinstance(beta_schedule, str):
        if beta_schedule not in BETA_ROUNDINGS:
            raise ValueError(
                f"beta_schedule must be a callable t -> beta or one of {BETA_ROUNDINGS}, "
                f"got {beta_schedule!r}"
            )
        beta_schedule = BetaSchedule(
            beta_init, beta_scale, beta_scale_interval, beta_max, rounding=beta_schedule,
            allow_decreasing=allow_decreasing_beta,
        )  # fmt: skip
    return QuantOptimizer(
        params, projection, route, lr=lr, levels=levels, base=base, beta_schedule=beta_schedule,
        **options,
    )  # fmt: skip
