"""Input checks shared by the maps, divergences, updates and theory helpers.

Every public function of the math core funnels its arguments through these, so a bad argument
fails the same way everywhere: a ``ValueError`` whose message names the argument and the range
it must lie in. Nothing is allowed to slip through and come back as NaN.
"""

from __future__ import annotations

import numpy as np

FLOAT_TYPES = (np.float16, np.float32, np.float64)


def float_dtype(*arrays) -> np.dtype:
    """The dtype results are returned in: the widest float type among the numpy array arguments
    if that is float16 or float32, float64 otherwise.

    Python scalars (``eta=0.1``) do not count, so float32 in gives float32 out and float16 in gives
    float16 out. Integer, float64 and other inputs compute and return in float64. (The
    computation itself is always float64; only the result is cast back.)
    """
    kinds = [np.asarray(a).dtype for a in arrays if isinstance(a, np.ndarray | np.generic)]
    if kinds and all(k in (np.float16, np.float32) for k in kinds):
        return np.dtype(np.float32) if any(k == np.float32 for k in kinds) else np.dtype(np.float16)
    return np.dtype(np.float64)


def as_finite(name: str, value) -> np.ndarray:
    """``value`` as a float64 array, rejecting NaN, infinity, complex numbers and non-numbers
    (dates and durations too: numpy turns them into counts of their unit, not real numbers)."""
    if isinstance(value, str | bytes) or value is None:
        raise ValueError(
            f"{name} must be a real number or an array of real numbers, got {value!r}"
        )
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "cUSVmM":
            raise TypeError(raw.dtype)
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(
            f"{name} must be a real number or an array of real numbers, got {_short(value)}"
        ) from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {_show(arr)}")
    return arr


def check_real(name: str, value) -> float:
    """A finite real scalar."""
    arr = as_finite(name, value)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single real number, got an array of shape {arr.shape}")
    return float(arr)


def check_scalar(name: str, value, lo: float = -np.inf, hi: float = np.inf,
                 lo_open: bool = False, hi_open: bool = False, allow_inf: bool = False) -> float:
    """A real scalar in the interval from ``lo`` to ``hi`` (open at an end if asked).

    NaN is always refused; +-inf only with ``allow_inf`` (and then only where the range allows).
    The message names the argument and the interval.
    """
    left = "(" if lo_open or lo == -np.inf else "["
    right = ")" if hi_open or hi == np.inf else "]"
    rng = f"{left}{lo}, {hi}{right}"
    if allow_inf and isinstance(value, float | np.floating) and np.isinf(value):
        x = float(value)
    else:
        try:
            x = check_real(name, value)
        except ValueError as err:
            raise ValueError(
                f"{name} must be a single finite real number in {rng}, got {_short(value)}"
            ) from err
    below = x <= lo if lo_open else x < lo
    above = x >= hi if hi_open else x > hi
    if below or above:
        raise ValueError(f"{name} must lie in {rng}, got {value}")
    return x


def check_count(name: str, value, minimum: int = 0, maximum: int = 10**9) -> int:
    """An integer (an int, or a float with an integral value) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(
        value, int | np.integer | float | np.floating
    ):
        raise ValueError(
            f"{name} must be an integer in [{minimum}, {maximum}], got {_short(value)}"
        )
    if isinstance(value, int | np.integer):
        ok = minimum <= value <= maximum
    else:
        ok = bool(np.isfinite(value)) and float(value) == int(value) and minimum <= value <= maximum
    if not ok:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    """One of ``choices`` (compared with ==); the message lists them."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_beta(beta) -> float:
    """The annealing parameter: a finite scalar > 0 (Eq. 12, 16, 21)."""
    b = as_finite("beta", beta)
    if b.ndim != 0:
        raise ValueError(f"beta must be a scalar > 0, got an array of shape {b.shape}")
    if not b > 0:
        raise ValueError(f"beta must be > 0 (allowed range: (0, inf)), got {float(b)}")
    return float(b)


def check_eta(eta) -> np.ndarray:
    """The step size: finite and >= 0 (a scalar or an array that broadcasts with x)."""
    e = as_finite("eta", eta)
    if np.any(e < 0):
        raise ValueError(f"eta must be >= 0 (allowed range: [0, inf)), got {_show(e)}")
    return e


def check_positive(name: str, value, minimum: float = 0.0, inclusive: bool = False) -> np.ndarray:
    """A finite value > ``minimum`` (or >= with ``inclusive``)."""
    v = as_finite(name, value)
    bad = v < minimum if inclusive else v <= minimum
    if np.any(bad):
        rng = f"[{minimum}, inf)" if inclusive else f"({minimum}, inf)"
        raise ValueError(f"{name} must lie in {rng}, got {_show(v)}")
    return v


def check_levels(levels, name: str = "levels") -> np.ndarray:
    """Quantization levels: a 1-D, finite, strictly increasing sequence of at least two values.

    The one level check of the numpy core (maps, toy, prox all call it).
    """
    q = as_finite(name, levels)
    if q.ndim != 1 or q.size < 2:
        raise ValueError(f"{name} must be a 1-D sequence of at least 2 values, got {_show(q)}")
    if np.any(np.diff(q) <= 0):
        raise ValueError(f"{name} must be strictly increasing (sorted, no repeats), got {_show(q)}")
    return q


def check_broadcast(**arrays) -> tuple[int, ...]:
    """The common shape of the named arrays, or a ValueError naming them."""
    shapes = {name: np.shape(a) for name, a in arrays.items()}
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError as err:
        described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes do not broadcast: {described}") from err


def check_range(name: str, value, ranges: dict) -> float:
    """A widget setting as a float, refused unless finite and inside ``ranges[name] = (lo, hi)``."""
    lo, hi = ranges[name]
    return check_scalar(name, value, lo, hi)


def tolerance(dtype: np.dtype, scale: float = 1.0) -> float:
    """How far outside a domain rounding may push a point: 64 units of roundoff of ``dtype``
    (float32, float64), 4 for float16, whose 64 units would already be 6 %; times ``scale``."""
    dtype = np.dtype(dtype)
    ulps = 4 if dtype.itemsize < 4 else 64
    return ulps * float(np.finfo(dtype).eps) * max(1.0, abs(scale))


def check_interval(name: str, x, lo: float, hi: float, dtype: np.dtype) -> np.ndarray:
    """``x`` (float64) inside the closed interval [lo, hi]; rounding overshoot is clipped back."""
    arr = as_finite(name, x)
    tol = tolerance(dtype, max(abs(lo), abs(hi)))
    if np.any(arr < lo - tol) or np.any(arr > hi + tol):
        raise ValueError(
            f"{name} must lie in the domain [{lo}, {hi}], got values in [{arr.min()}, {arr.max()}]"
        )
    return np.clip(arr, lo, hi)


def check_simplex(name: str, u, d: int, dtype: np.dtype) -> np.ndarray:
    """``u`` (float64) a stack of probability vectors of length ``d`` along the last axis."""
    arr = as_finite(name, u)
    if arr.ndim == 0 or arr.shape[-1] != d:
        raise ValueError(
            f"{name} must have a last axis of length {d} (one probability per level), "
            f"got shape {arr.shape}"
        )
    tol = tolerance(dtype, d)
    if np.any(arr < -tol):
        raise ValueError(f"{name} must be non-negative (a probability vector), got min {arr.min()}")
    sums = arr.sum(axis=-1)
    if np.any(np.abs(sums - 1) > tol):
        worst = sums.flat[np.argmax(np.abs(sums - 1))]
        raise ValueError(
            f"{name} must sum to 1 along the last axis (the probability simplex), got a sum of "
            f"{worst}"
        )
    return np.clip(arr, 0.0, 1.0)


def interior(x: np.ndarray, lo: float, hi: float, dtype: np.dtype) -> np.ndarray:
    """Move points on the boundary to the nearest interior number representable in ``dtype``.

    The inverse of a valid projection is infinite on the boundary (Theorem 1, condition 2), so a
    boundary point could never leave it. Treating it as the closest interior number of its own
    precision keeps every update finite; interior points are left untouched.
    """
    # At 0 the next float up is subnormal; the smallest normal number is the useful neighbour.
    tiny = float(np.finfo(dtype).tiny)
    lo_in = max(float(np.nextafter(dtype.type(lo), dtype.type(hi))), lo + tiny)
    hi_in = min(float(np.nextafter(dtype.type(hi), dtype.type(lo))), hi - tiny)
    return np.clip(x, lo_in, hi_in)


def finish(value: np.ndarray, dtype: np.dtype):
    """Cast a float64 result back to the caller's dtype; 0-d results become numpy scalars."""
    return np.asarray(value, dtype=dtype)[()]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _show(arr: np.ndarray) -> str:
    if arr.size <= 6:
        return np.array2string(arr, separator=", ")
    return f"array of shape {arr.shape} with values in [{np.nanmin(arr)}, {np.nanmax(arr)}]"
