"""Schedules of beta: callables of the step index t = 0, 1, ... that the optimizer calls once per
step (``QuantOptimizer(..., beta_schedule=...)``); any ``t -> beta`` callable works in their place.
"""

from __future__ import annotations

import math

BETA_ROUNDINGS = ("floor", "ceil")


class BetaSchedule:
    """``beta_t = min(beta_init * beta_scale ** k(t), beta_max)`` for the t-th step (t = 0, 1, ...).

    ``rounding="floor"`` (this package's default): k = floor(t / interval), so the first
    multiplication happens after ``interval`` steps. ``rounding="ceil"`` (the authors' released
    code, used by ``--preset paper``): k = ceil(t / interval), so beta is multiplied right after
    step 0 and then every ``interval`` steps. ``beta_scale < 1`` shrinks beta, which drives every
    weight toward 0 once beta underflows; it is refused unless ``allow_decreasing=True``.
    Calling the schedule returns a Python float; a value that overflows raises and asks for a cap.
    """

    def __init__(
        self,
        beta_init: float = 1.0,
        beta_scale: float = 1.0,
        interval: int = 1,
        beta_max: float = math.inf,
        rounding: str = "floor",
        allow_decreasing: bool = False,
    ):
        self.beta_init = _number("beta_init", beta_init, "(0, inf)", lambda v: 0 < v < math.inf)
        if allow_decreasing:
            rng, lower = "(0, inf)", 0.0
        else:
            rng, lower = "[1, inf) (allow_decreasing_beta=True allows (0, 1))", 1.0
        self.beta_scale = _number(
            "beta_scale", beta_scale, rng, lambda v: lower <= v < math.inf and v > 0
        )
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"beta_scale_interval must be an int >= 1, got {interval!r}")
        self.interval = int(interval)
        self.beta_max = _number("beta_max", beta_max, "(0, inf]", lambda v: v > 0)
        if self.beta_max < self.beta_init:
            raise ValueError(f"beta_max must be >= beta_init={beta_init}, got {beta_max!r}")
        if rounding not in BETA_ROUNDINGS:
            raise ValueError(f"rounding must be one of {BETA_ROUNDINGS}, got {rounding!r}")
        self.rounding = rounding

    def spec(self) -> dict:
        """The schedule as plain values (saved in the optimizer's ``state_dict``)."""
        return dict(beta_init=self.beta_init, beta_scale=self.beta_scale, interval=self.interval,
                    beta_max=self.beta_max, rounding=self.rounding,
                    allow_decreasing=self.beta_scale < 1)  # fmt: skip

    def exponent(self, t: int) -> int:
        return -(-t // self.interval) if self.rounding == "ceil" else t // self.interval

    def __call__(self, t: int) -> float:
        try:
            beta = self.beta_init * self.beta_scale ** self.exponent(t)
        except OverflowError:
            beta = math.inf
        beta = min(beta, self.beta_max)
        if not (0 < beta < math.inf):
            raise ValueError(
                f"beta left (0, inf) at step {t} (beta_scale={self.beta_scale}, "
                f"beta_scale_interval={self.interval}); set a finite beta_max"
            )
        return beta

    def __repr__(self):
        return (
            f"BetaSchedule(beta_init={self.beta_init}, beta_scale={self.beta_scale}, "
            f"interval={self.interval}, beta_max={self.beta_max}, rounding={self.rounding!r})"
        )


def _number(name, value, allowed, ok) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in {allowed}, got {value!r}")
    value = float(value)
    if math.isnan(value) or not ok(value):
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return value


def floor_beta_schedule(beta_init=1.0, beta_scale=1.0, interval=1, beta_max=math.inf, **kw):
    """The default schedule: beta_0 s^floor(t / I), capped (see :class:`BetaSchedule`)."""
    return BetaSchedule(beta_init, beta_scale, interval, beta_max, "floor", **kw)


def ceil_beta_schedule(beta_init=1.0, beta_scale=1.0, interval=1, beta_max=math.inf, **kw):
    """The authors' released schedule: beta_0 s^ceil(t / I), capped (see :class:`BetaSchedule`)."""
    return BetaSchedule(beta_init, beta_scale, interval, beta_max, "ceil", **kw)
