"""Figure helpers shared by the chapters, so that a chapter's cell says what it shows, not how.

Every helper draws with matplotlib only, returns the Figure (or the Axes it drew on), and takes its
data from the objects of ``mdq_teach.maps`` through their public methods (``project``,
``inverse``, ``potential``, ``domain``), so a figure always shows what the library computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np

# The equilateral triangle that carries the 2-simplex: vertex k of the simplex is drawn at row k.
_TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])


def _check_betas(betas) -> np.ndarray:
    betas = np.atleast_1d(np.asarray(betas, dtype=float))
    if betas.ndim != 1 or betas.size == 0 or np.any(~np.isfinite(betas)) or np.any(betas <= 0):
        raise ValueError("betas must be a non-empty list of finite numbers > 0")
    return betas


def _interior(domain, n: int, margin: float) -> np.ndarray:
    lo, hi = (float(v) for v in domain)
    pad = margin * (hi - lo)
    return np.linspace(lo + pad, hi - pad, n)


def projection_panels(
    m, betas, *, span: float = 3.0, n: int = 401, margin: float = 1e-3, title: str | None = None
):
    """Three panels for a scalar projection map ``m`` at each beta: P_beta(x~), P_beta^{-1}(x) and
    the mirror map Phi_beta(x) of Theorem 1 (the paper's Fig. 2).

    ``m`` needs ``project(x_tilde, beta)``, ``inverse(x, beta)``, ``potential(x, beta)`` and
    ``domain = (lo, hi)``; x~ runs over [-span, span], x over the open domain shrunk by
    ``margin`` times its length at each end (P^{-1} diverges at the boundary).
    """
    betas = _check_betas(betas)
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span}")
    if not 0 < margin < 0.5:
        raise ValueError(f"margin must be in (0, 0.5), got {margin}")
    x_tilde = np.linspace(-span, span, n)
    x = _interior(m.domain, n, margin)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), layout="constrained")
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, betas.size))
    for beta, color in zip(betas, colors, strict=True):
        label = rf"$\beta={beta:g}$"
        axes[0].plot(x_tilde, m.project(x_tilde, beta), color=color, label=label)
        axes[1].plot(x, m.inverse(x, beta), color=color, label=label)
        axes[2].plot(x, m.potential(x, beta), color=color, label=label)
    axes[0].set(xlabel=r"$\tilde x$", ylabel=r"$x = P_\beta(\tilde x)$", title="projection")
    axes[1].set(xlabel=r"$x$", ylabel=r"$P_\beta^{-1}(x)$", title="inverse")
    axes[2].set(xlabel=r"$x$", ylabel=r"$\Phi_\beta(x)$", title="mirror map")
    axes[1].set_ylim(-span, span)
    axes[0].legend(fontsize="small")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def bregman_gap(
    phi: Callable, grad_phi: Callable, p: float, q: float, interval, *, ax=None, n: int = 300
):
    """Draw a convex Phi on ``interval``, its tangent at q, and the Bregman divergence D_Phi(p, q)
    (Eq. 3) as the vertical gap at p between Phi and the tangent. Returns the Axes.
    """
    lo, hi = (float(v) for v in interval)
    if not lo < hi:
        raise ValueError(f"interval must be (lo, hi) with lo < hi, got {interval}")
    for name, v in (("p", p), ("q", q)):
        if not lo <= v <= hi:
            raise ValueError(f"{name} must lie in the interval [{lo}, {hi}], got {v}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    x = np.linspace(lo, hi, n)
    tangent = lambda t: phi(q) + grad_phi(q) * (t - q)
    ax.plot(x, phi(x), color="C0", label=r"$\Phi$")
    ax.plot(x, tangent(x), color="C1", ls="--", label=r"tangent at $q$")
    ax.plot([p, p], [tangent(p), phi(p)], color="C3", lw=3, label=r"$D_\Phi(p, q)$")
    ax.plot([q], [phi(q)], "o", color="C1")
    ax.plot([p], [phi(p)], "o", color="C3")
    ax.annotate("q", (q, phi(q)), textcoords="offset points", xytext=(4, -12))
    ax.annotate("p", (p, phi(p)), textcoords="offset points", xytext=(4, 4))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def convergence_curves(
    curves: Mapping[str, np.ndarray],
    *,
    bounds: Mapping[str, np.ndarray] | None = None,
    ax=None,
    logy: bool = True,
    xlabel: str = "iteration $k$",
    ylabel: str = "optimality gap",
):
    """Plot named curves against their index, optionally each with a dashed bound of the same name
    in the same color. Returns the Axes."""
    if not curves:
        raise ValueError("curves must contain at least one named curve")
    bounds = bounds or {}
    unknown = set(bounds) - set(curves)
    if unknown:
        raise ValueError(
            f"bounds has names with no curve: {sorted(unknown)}; curves: {list(curves)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    for i, (name, y) in enumerate(curves.items()):
        y = np.asarray(y, dtype=float)
        if y.ndim != 1:
            raise ValueError(f"curve {name!r} must be 1-D, got shape {y.shape}")
        if logy and np.any(y < 0):
            raise ValueError(f"curve {name!r} has negative values, which a log axis cannot show")
        ax.plot(np.arange(y.size), y, color=f"C{i}", label=name)
        if name in bounds:
            b = np.asarray(bounds[name], dtype=float)
            ax.plot(
                np.arange(1, b.size + 1), b, color=f"C{i}", ls="--", lw=1, label=f"{name}: bound"
            )
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return ax


def small_multiples(
    draw: Callable,
    values: Iterable,
    *,
    ncols: int = 4,
    panel_size: tuple[float, float] = (2.8, 2.3),
    title: Callable | None = None,
    sharex: bool = True,
    sharey: bool = True,
):
    """One panel per value: ``draw(ax, value)`` fills each, ``title(value)`` names it (default:
    the value itself; ``draw`` may overwrite it). Unused cells of the last row are hidden.
    Returns the Figure."""
    values = list(values)
    if not values:
        raise ValueError("values must contain at least one value")
    if int(ncols) < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(int(ncols), len(values))
    nrows = -(-len(values) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        sharex=sharex,
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    for ax, value in zip(axes.flat, values, strict=False):
        # the title first, so that ``draw`` may replace it with one computed from its data
        ax.set_title(title(value) if title else str(value), fontsize="medium")
        ax.grid(alpha=0.3)
        draw(ax, value)
    for ax in axes.flat[len(values) :]:
        ax.set_visible(False)
    return fig


def simplex_xy(u) -> np.ndarray:
    """Planar coordinates of points of the 2-simplex (rows of ``u``, shape (..., 3)) on an
    equilateral triangle whose vertex k is the one-hot vector e_k."""
    u = np.asarray(u, dtype=float)
    if u.shape[-1] != 3:
        raise ValueError(f"u must have 3 barycentric coordinates in its last axis, got {u.shape}")
    if np.any(u < -1e-9) or not np.allclose(u.sum(axis=-1), 1.0):
        raise ValueError("u must lie in the probability simplex (u >= 0, rows summing to 1)")
    return u @ _TRIANGLE


def draw_simplex(ax, vertex_labels=("$e_1$", "$e_2$", "$e_3$"), *, fill: str = "0.93"):
    """Draw the 2-simplex (the convex hull of three one-hot vectors) with labelled vertices."""
    if len(vertex_labels) != 3:
        raise ValueError(f"vertex_labels must have 3 entries, got {len(vertex_labels)}")
    ax.fill(*_TRIANGLE.T, color=fill, zorder=0)
    ax.plot(*np.r_[_TRIANGLE, _TRIANGLE[:1]].T, color="k", lw=1)
    ax.plot(*_TRIANGLE.T, "ks", ms=7)
    offsets = [(-14, -12), (6, -12), (-6, 8)]
    for xy, label, off in zip(_TRIANGLE, vertex_labels, offsets, strict=True):
        ax.annotate(label, xy, textcoords="offset points", xytext=off)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def draw_interval(ax, levels, *, y: float = 0.0, label: str | None = None):
    """Draw [min(levels), max(levels)] as a segment with the quantization levels as squares."""
    levels = np.sort(np.asarray(levels, dtype=float))
    if levels.ndim != 1 or levels.size < 2:
        raise ValueError(f"levels must hold at least two values, got {levels}")
    ax.plot([levels[0], levels[-1]], [y, y], color="0.6", lw=6, solid_capstyle="butt", zorder=0)
    ax.plot(levels, np.full(levels.size, y), "ks", ms=7)
    for level in levels:
        ax.annotate(f"{level:g}", (level, y), textcoords="offset points", xytext=(-4, -16))
    if label:
        ax.annotate(label, (levels[0], y), textcoords="offset points", xytext=(0, 10))
    return ax
