"""Figure helpers shared by the chapters, so that a chapter's cell says what it shows, not how.

Every helper draws with matplotlib only, returns the Figure (or the Axes it drew on), and takes its
data from the objects of ``mdq_teach.maps`` through their public methods (``project``,
``inverse``, ``potential``, ``domain``), so a figure always shows what the library computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

# The equilateral triangle that carries the 2-simplex: vertex k of the simplex is drawn at row k.
_TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])

# Okabe & Ito's palette, distinguishable with every common colour-vision deficiency. Yellow comes
# late because it is faint on white; "C0".."C7" in any chapter resolve to these colours.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)

# A figure is shown at its own size, at most the text column: about 740 px at 1280 px, and about
# 360 px on a phone (390 px), where a 6.5-inch SVG figure (624 px) is scaled by about 0.58. So the
# book's figures are at most 6.5 inches wide (several panels go in rows, not in one wide row), and
# their smallest text, 10 pt, is still 7.6 px on a phone (tests/test_book_figures.py measures it).
BOOK_STYLE = {
    "figure.dpi": 100,
    "figure.figsize": (6.5, 4.0),
    "font.size": 12.0,
    "axes.titlesize": 12.0,
    "axes.labelsize": 12.0,
    "xtick.labelsize": 11.0,
    "ytick.labelsize": 11.0,
    "legend.fontsize": 11.0,
    "figure.titlesize": 13.0,
    "lines.linewidth": 1.8,
    "axes.prop_cycle": plt.cycler(color=list(OKABE_ITO)),
    "image.cmap": "viridis",
    # SVG text stays text (<text> elements in the font named here, not paths): sharp at any zoom,
    # searchable, and measurable by tests/test_book_figures.py. The salt keeps the ids of a
    # figure's clip paths the same from one run to the next.
    "svg.fonttype": "none",
    "svg.hashsalt": "mdq-teach",
}

# The formats a chapter's figure is written in: the HTML book shows the SVG (myst-nb's priority for
# the html builder has no application/pdf) and the PDF book includes the PDF (LaTeX cannot include
# SVG; the latex builder's priority starts with application/pdf).
FIGURE_FORMATS = ("svg", "pdf")


def use_book_style() -> None:
    """Set the book's matplotlib style (sizes legible in the rendered page, the Okabe-Ito cycle)
    and, in a notebook with the inline backend, the formats of its figures (``FIGURE_FORMATS``)."""
    plt.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book's extra
        return
    shell = get_ipython()
    if shell is not None and "inline" in str(plt.get_backend()).lower():
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats(*FIGURE_FORMATS)


# A method looks the same in every figure of the book, and is told apart from the others without
# colour (in print, with a colour-vision deficiency): its own marker, and a line style. Seven
# colours for fifteen methods: the methods one figure draws together (chapter 7's four, chapter
# 8's six, chapter 10's five) have different colours; in chapter 11's ten some share one.
METHOD_STYLES = {
    "float": ("#000000", "x", ":"),
    "bc": ("#0072B2", "s", "-"),
    "pq": ("#E69F00", "^", "--"),
    "pq-l1": ("#CC79A7", "<", "-."),
    "pq-l2": ("#E69F00", ">", ":"),
    "pmf": ("#009E73", "D", "-."),
    "gd-tanh": ("#009E73", "*", ":"),
    "md-tanh": ("#56B4E9", "v", "--"),
    "md-tanh-s": ("#D55E00", "o", "-"),
    "md-softmax": ("#CC79A7", "X", "--"),
    "md-softmax-s": ("#CC79A7", "P", "-"),
    "proxconnect": ("#56B4E9", "h", "-"),
    "proxconnect-linear": ("#56B4E9", "p", "-."),
    "proxconnect-binaryrelax": ("#CC79A7", "d", "--"),
    "proxconnect-tanh": ("#009E73", "8", ":"),
}
# Series that are not methods (the caps of an annealing schedule, quantizers): the i-th series.
SERIES_STYLES = (
    ("C0", "o", "-"),
    ("C1", "s", "--"),
    ("C2", "^", "-."),
    ("C3", "D", ":"),
    ("C4", "v", "-"),
    ("C5", "P", "--"),
    ("C6", "X", "-."),
    ("C7", "*", ":"),
)


def method_style(method: str | int) -> dict:
    """Colour, marker and line style of a method: ``plot(..., **method_style("md-tanh-s"))``.

    ``method`` is a method string (``"md-tanh-s"``), its display name (``"MD-tanh-S"``, see
    ``mdq_teach.tables.METHOD_NAMES``), or an int ``i`` for the i-th of series that are not
    methods (any int; the styles repeat after ``len(SERIES_STYLES)``). The same method gets the
    same style in every figure, and no two methods share their marker and line style."""
    if isinstance(method, (int, np.integer)) and not isinstance(method, bool):
        color, marker, linestyle = SERIES_STYLES[int(method) % len(SERIES_STYLES)]
    else:
        from mdq_teach.tables import METHOD_NAMES

        by_display = {v.lower(): k for k, v in METHOD_NAMES.items()}
        key = str(method).strip().lower()
        key = by_display.get(key, key)
        if key not in METHOD_STYLES:
            raise ValueError(f"no style for method {method!r}; methods: {sorted(METHOD_STYLES)}")
        color, marker, linestyle = METHOD_STYLES[key]
    return {"color": color, "marker": marker, "linestyle": linestyle}


def sci(value: float, digits: int = 2) -> str:
    """A number for prose, ``4.4 × 10³`` in plain Unicode (no math markup), never ``4.4e+03``.

    Values with 0.01 <= |value| < 1000 are written plainly, with ``digits`` significant digits.
    """
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")
    if int(digits) < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    if value == 0.0:
        return "0"
    exponent = int(np.floor(np.log10(abs(value))))
    mantissa = round(value / 10.0**exponent, int(digits) - 1)
    if abs(mantissa) >= 10.0:  # rounding carried into the next power of ten
        mantissa, exponent = mantissa / 10.0, exponent + 1
    if -2 <= exponent <= 2:
        return f"{value:.{max(int(digits) - 1 - exponent, 0)}f}"
    sign_exp = str(exponent).replace("-", "\u2212")
    superscript = sign_exp.translate(str.maketrans("0123456789\u2212", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))
    return f"{mantissa:.{int(digits) - 1}f} × 10{superscript}"


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
    # two rows of two: the three panels and the legend, legible in a phone's column
    fig, grid = plt.subplots(2, 2, figsize=(6.5, 5.4), layout="constrained")
    axes, key = grid.flat[:3], grid.flat[3]
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, betas.size))  # ordered: light = large beta
    for i, (beta, color) in enumerate(zip(betas, colors, strict=True)):
        label = rf"$\beta={beta:g}$"
        # a line style per beta as well, so that the curves differ without colour
        style = dict(color=color, ls=SERIES_STYLES[i % len(SERIES_STYLES)][2], label=label)
        axes[0].plot(x_tilde, m.project(x_tilde, beta), **style)
        axes[1].plot(x, m.inverse(x, beta), **style)
        axes[2].plot(x, m.potential(x, beta), **style)
    axes[0].set(xlabel=r"$\tilde x$", ylabel=r"$x = P_\beta(\tilde x)$", title="projection")
    axes[1].set(xlabel=r"$x$", ylabel=r"$P_\beta^{-1}(x)$", title="inverse")
    axes[2].set(xlabel=r"$x$", ylabel=r"$\Phi_\beta(x)$", title="mirror map")
    axes[1].set_ylim(-span, span)
    key.axis("off")
    key.legend(*axes[0].get_legend_handles_labels(), loc="center")
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
        # its colour and marker tell a curve apart; its bound is dashed, in the same colour
        style = method_style(i)
        ax.plot(np.arange(y.size), y, color=style["color"], marker=style["marker"],
                markevery=max(1, y.size // 8), ms=5, label=name)  # fmt: skip
        if name in bounds:
            b = np.asarray(bounds[name], dtype=float)
            ax.plot(
                np.arange(1, b.size + 1), b, color=style["color"], ls="--", lw=1,
                label=f"{name}: bound",
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


def player(
    draw_frame: Callable,
    values: Iterable,
    *,
    figsize: tuple[float, float] = (7.0, 3.0),
    dpi: float = 72.0,
    interval_ms: int = 400,
    label: Callable | None = None,
    alt: str = "",
) -> str:
    """A kernel-free player for the rendered page: a slider and a play button over one frame per
    value, each drawn at build time by ``draw_frame(fig, value)`` on a cleared figure.

    Returns self-contained HTML (lossless WebP frames inline, a few lines of JavaScript, nothing
    from the network); display it with ``IPython.display.HTML``. ``label(value)`` is the text
    shown beside the slider (default: the value to 3 significant digits) and ``alt`` the image's
    alt text. A frame of a 7 x 3 inch figure at 72 dpi weighs about 10 KiB: keep 16-30 frames.
    """
    import base64
    import html
    import io
    import json
    import uuid

    values = list(values)
    if not 2 <= len(values) <= 60:
        raise ValueError(f"values must hold between 2 and 60 frames, got {len(values)}")
    if not 30 <= dpi <= 150:
        raise ValueError(f"dpi must be in [30, 150], got {dpi}")
    if int(interval_ms) < 1:
        raise ValueError(f"interval_ms must be >= 1, got {interval_ms}")
    label = label or (lambda v: f"{v:.3g}")
    # A Figure outside pyplot: the notebook's inline backend never sees it, so building a player
    # neither shows an extra figure nor flushes figures other cells left open.
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    frames = []
    for value in values:
        fig.clear()
        draw_frame(fig, value)
        buf = io.BytesIO()
        # lossless WebP: a third of the PNG's size for line art, exact colours
        fig.savefig(buf, format="webp", dpi=dpi, pil_kwargs={"lossless": True})
        frames.append("data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode())
    texts = [str(label(v)) for v in values]
    uid = "mdq-player-" + uuid.uuid4().hex[:12]
    width, height = (round(s * dpi) for s in figsize)
    return f"""<div class="mdq-player" id="{uid}" style="max-width:100%">
<img src="{frames[0]}" alt="{html.escape(alt)}" width="{width}" height="{height}"
 style="max-width:100%;height:auto;display:block">
<div style="display:flex;align-items:center;gap:0.6em;margin-top:0.3em">
<button type="button" aria-label="play" title="play / pause">\u25b6</button>
<input type="range" min="0" max="{len(frames) - 1}" step="1" value="0"
 aria-label="frame" style="flex:1">
<output>{html.escape(texts[0])}</output>
</div>
<script>
(function () {{
  var root = document.getElementById("{uid}");
  var frames = [root.querySelector("img").src].concat({json.dumps(frames[1:])});
  var texts = {json.dumps(texts)};
  var img = root.querySelector("img"), range = root.querySelector("input");
  var out = root.querySelector("output"), play = root.querySelector("button");
  var timer = null;
  function show(i) {{ img.src = frames[i]; range.value = i; out.textContent = texts[i]; }}
  range.addEventListener("input", function () {{ show(Number(range.value)); }});
  play.addEventListener("click", function () {{
    if (timer) {{ clearInterval(timer); timer = null; play.textContent = "\u25b6"; return; }}
    play.textContent = "\u275a\u275a";
    timer = setInterval(function () {{
      show((Number(range.value) + 1) % frames.length);
    }}, {int(interval_ms)});
  }});
}})();
</script>
</div>"""


PAPER_FIELDS = ("table", "row", "method", "space", "dataset", "architecture", "levels", "accuracy")


def read_paper_results(path) -> list[dict]:
    """Published accuracies from a CSV such as ``book/data/paper_results.csv``: '#' lines are
    the citation and notes, then one record per (table, method, dataset, architecture).

    Returns dicts with int 'table' and 'row', float 'accuracy' (in %) and str other fields.
    """
    import csv
    from pathlib import Path

    lines = [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) != PAPER_FIELDS:
        raise ValueError(f"{path}: columns must be {PAPER_FIELDS}, got {reader.fieldnames}")
    records = []
    for i, rec in enumerate(reader, start=2):
        try:
            rec["table"], rec["row"] = int(rec["table"]), int(rec["row"])
            rec["accuracy"] = float(rec["accuracy"])
        except ValueError as err:
            message = f"{path}: record {i} has a non-numeric table, row or accuracy"
            raise ValueError(message) from err
        if not 0.0 <= rec["accuracy"] <= 100.0:
            raise ValueError(
                f"{path}: record {i} has accuracy {rec['accuracy']} outside [0, 100]"
            )
        records.append(rec)
    return records


def paper_table_markdown(records, table: int, methods=None, extra: Mapping | None = None) -> str:
    """One published table as a Markdown pipe table, methods as rows (in the paper's order) and
    (dataset, architecture) as columns; ``methods`` keeps only those rows. ``extra`` maps a
    column header to {method: text} to set other numbers (this book's runs) beside the paper's."""
    chosen = [r for r in records if r["table"] == table]
    if not chosen:
        raise ValueError(f"no records for table {table}")
    columns = list(dict.fromkeys((r["dataset"], r["architecture"]) for r in chosen))
    rows = sorted({(r["row"], r["method"]) for r in chosen})
    if methods is not None:
        unknown = set(methods) - {m for _, m in rows}
        if unknown:
            raise ValueError(f"methods not in table {table}: {sorted(unknown)}")
        rows = [(i, m) for i, m in rows if m in methods]
    value = {(r["method"], r["dataset"], r["architecture"]): r["accuracy"] for r in chosen}
    extra = dict(extra or {})
    head = ["method"] + [f"{d}, {a}" for d, a in columns] + list(extra)
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for _, method in rows:
        cells = [method.replace("*", "\\*")]
        cells += [f"{value[(method, d, a)]:.2f}" for d, a in columns]
        cells += [str(extra[h].get(method, "")) for h in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
