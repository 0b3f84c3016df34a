"""mdq_teach.plots: each helper draws exactly the data it is given, and rejects bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mdq_teach import plots  # noqa: E402


class _Tanh:
    """tanh(beta x~) written out here, so the test does not depend on mdq_teach.maps."""

    domain = (-1.0, 1.0)

    def project(self, x_tilde, beta):
        return np.tanh(beta * x_tilde)

    def inverse(self, x, beta):
        return np.arctanh(x) / beta

    def potential(self, x, beta):
        return ((1 + x) * np.log1p(x) + (1 - x) * np.log1p(-x)) / (2 * beta)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.fidelity("md:fig2")
def test_projection_panels_plot_the_map_inverse_and_potential_for_each_beta():
    m = _Tanh()
    betas = [1.0, 4.0]
    fig = plots.projection_panels(m, betas, span=2.0, n=51)
    project_ax, inverse_ax, potential_ax = fig.axes[:3]
    for k, beta in enumerate(betas):
        xt, x = project_ax.lines[k].get_data()
        np.testing.assert_allclose(x, np.tanh(beta * xt))
        x, y = inverse_ax.lines[k].get_data()
        assert x.min() > -1 and x.max() < 1
        np.testing.assert_allclose(y, np.arctanh(x) / beta)
        x, phi = potential_ax.lines[k].get_data()
        # the mirror map's derivative is the inverse (Theorem 1): check by finite differences
        grad = np.gradient(phi, x)[5:-5]
        np.testing.assert_allclose(grad, np.arctanh(x[5:-5]) / beta, rtol=1e-2, atol=5e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"betas": []}, "betas"),
        ({"betas": [1.0, -2.0]}, "betas"),
        ({"betas": [np.nan]}, "betas"),
        ({"betas": [1.0], "span": 0.0}, "span"),
        ({"betas": [1.0], "margin": 0.7}, "margin"),
    ],
)
def test_projection_panels_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.projection_panels(_Tanh(), **kwargs)


def test_bregman_gap_segment_has_the_length_of_the_divergence():
    phi = lambda x: np.exp(x)
    p, q = 1.5, -0.5
    ax = plots.bregman_gap(phi, np.exp, p, q, (-2, 2))
    segment = next(line for line in ax.lines if line.get_label() == r"$D_\Phi(p, q)$")
    xs, ys = segment.get_data()
    assert xs[0] == xs[1] == p
    # Eq. 3 computed here independently
    assert np.isclose(ys[1] - ys[0], np.exp(p) - np.exp(q) - np.exp(q) * (p - q))


def test_bregman_gap_rejects_points_outside_the_interval():
    with pytest.raises(ValueError, match="p must lie in the interval"):
        plots.bregman_gap(np.exp, np.exp, 3.0, 0.0, (-1, 1))
    with pytest.raises(ValueError, match="interval"):
        plots.bregman_gap(np.exp, np.exp, 0.0, 0.0, (1, -1))


def test_convergence_curves_draw_curves_and_bounds_on_a_log_axis():
    gap = 1.0 / np.arange(1, 11)
    bound = 2.0 / np.sqrt(np.arange(1, 11))
    ax = plots.convergence_curves({"EG": gap}, bounds={"EG": bound})
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), gap)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), bound)
    # the bound at t is drawn at x = t (it bounds the average of t iterates)
    np.testing.assert_allclose(ax.lines[1].get_xdata(), np.arange(1, 11))


@pytest.mark.parametrize(
    "curves, bounds, match",
    [
        ({}, None, "at least one"),
        ({"a": np.ones((2, 2))}, None, "1-D"),
        ({"a": np.array([1.0, -1.0])}, None, "negative"),
        ({"a": np.ones(3)}, {"b": np.ones(3)}, "no curve"),
    ],
)
def test_convergence_curves_reject_bad_input(curves, bounds, match):
    with pytest.raises(ValueError, match=match):
        plots.convergence_curves(curves, bounds=bounds)


def test_small_multiples_make_one_visible_panel_per_value():
    seen = []
    fig = plots.small_multiples(lambda ax, v: seen.append(v), [1, 2, 3, 4, 5], ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert seen == [1, 2, 3, 4, 5]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == ["1", "2", "3", "4", "5"]
    named = plots.small_multiples(lambda ax, v: None, [1, 2], title=lambda v: f"beta={v}")
    assert [ax.get_title() for ax in named.axes] == ["beta=1", "beta=2"]
    # a title set by draw wins over the default one
    own = plots.small_multiples(lambda ax, v: ax.set_title(f"drawn {v}"), [7])
    assert own.axes[0].get_title() == "drawn 7"
    with pytest.raises(ValueError, match="values"):
        plots.small_multiples(lambda ax, v: None, [])
    with pytest.raises(ValueError, match="ncols"):
        plots.small_multiples(lambda ax, v: None, [1], ncols=0)


def test_simplex_xy_maps_vertices_to_corners_and_barycentres_to_the_centroid():
    corners = plots.simplex_xy(np.eye(3))
    sides = np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1)
    np.testing.assert_allclose(sides, 1.0)  # equilateral
    np.testing.assert_allclose(plots.simplex_xy(np.full(3, 1 / 3)), corners.mean(axis=0))
    with pytest.raises(ValueError, match="simplex"):
        plots.simplex_xy([0.5, 0.6, 0.1])
    with pytest.raises(ValueError, match="3 barycentric"):
        plots.simplex_xy([0.5, 0.5])


def test_draw_simplex_and_interval_place_the_vertices_and_levels():
    fig, (a, b) = plt.subplots(1, 2)
    plots.draw_simplex(a)
    markers = [line for line in a.lines if line.get_marker() == "s"][0]
    np.testing.assert_allclose(np.c_[markers.get_data()], plots.simplex_xy(np.eye(3)))
    plots.draw_interval(b, [1, -1, 0])
    levels = [line for line in b.lines if line.get_marker() == "s"][0]
    np.testing.assert_allclose(levels.get_xdata(), [-1, 0, 1])
    with pytest.raises(ValueError, match="levels"):
        plots.draw_interval(b, [1.0])
    with pytest.raises(ValueError, match="vertex_labels"):
        plots.draw_simplex(a, ("a", "b"))


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (4437.2, 2, "4.4 × 10³"),
        (1.234e-12, 2, "1.2 × 10⁻¹²"),
        (-2.5e7, 2, "-2.5 × 10⁷"),
        (9.96e5, 2, "1.0 × 10⁶"),  # rounding carries into the next power of ten
        (3e-5, 1, "3 × 10⁻⁵"),
        (0.5, 2, "0.50"),
        (123.4, 2, "123"),
        (0.0, 3, "0"),
    ],
)
def test_sci_writes_numbers_for_prose_without_e_notation(value, digits, text):
    assert plots.sci(value, digits) == text
    assert "e" not in plots.sci(value, digits)


@pytest.mark.parametrize(("value", "digits"), [(float("nan"), 2), (float("inf"), 2), (1.0, 0)])
def test_sci_rejects_bad_input(value, digits):
    with pytest.raises(ValueError):
        plots.sci(value, digits)


def test_book_style_uses_the_okabe_ito_cycle():
    with plt.rc_context():
        plots.use_book_style()
        _, ax = plt.subplots()
        colors = [ax.plot([0, 1])[0].get_color() for _ in plots.OKABE_ITO]
    assert [c.upper() for c in colors] == [c.upper() for c in plots.OKABE_ITO]
    assert len(set(plots.OKABE_ITO)) == 8


def test_player_has_one_frame_per_value_a_slider_and_nothing_from_the_network():
    import base64
    import json
    import re

    seen = []

    def draw(fig, value):
        seen.append(value)
        fig.subplots().plot([0, 1], [0, value])

    html = plots.player(draw, [1.0, 2.0, 3.0], figsize=(3, 2), dpi=40,
                        label=lambda v: f"beta = {v:g}", alt="a line")
    # the first frame is the image's own source, the others follow in the script
    first = re.search(r'<img src="([^"]+)"', html).group(1)
    frames = [first] + json.loads(re.search(r"\.concat\((\[.*?\])\);", html).group(1))
    assert len(frames) == 3 and seen == [1.0, 2.0, 3.0]
    images = [base64.b64decode(f.split(",", 1)[1]) for f in frames]
    assert all(i[:4] == b"RIFF" and i[8:12] == b"WEBP" for i in images)
    assert len(set(images)) == 3  # every frame differs
    assert 'type="range"' in html and 'max="2"' in html and 'alt="a line"' in html
    assert json.loads(re.search(r"var texts = (\[.*?\]);", html).group(1)) == [
        "beta = 1", "beta = 2", "beta = 3"]
    assert "http://" not in html and "https://" not in html


def test_player_leaves_pyplot_alone():
    # a figure another cell left open (as an explorer may) must not be flushed or closed
    other = plt.figure()
    html = plots.player(lambda fig, v: fig.subplots().plot([0, v]), [1.0, 2.0], dpi=40)
    assert plt.get_fignums() == [other.number]
    assert html.count("data:image/webp") == 2


@pytest.mark.parametrize(
    ("values", "kwargs", "match"),
    [([1.0], {}, "between 2 and 60"), ([1.0, 2.0], {"dpi": 10}, "dpi"),
     ([1.0, 2.0], {"interval_ms": 0}, "interval_ms")],
)
def test_player_rejects_bad_arguments(values, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.player(lambda fig, v: None, values, **kwargs)


def test_method_style_tells_every_method_apart_without_colour():
    from mdq_teach.tables import METHOD_NAMES

    styles = {m: plots.method_style(m) for m in plots.METHOD_STYLES}
    assert set(METHOD_NAMES) <= set(styles)  # every method of the book has its style
    pairs = [(s["marker"], s["linestyle"]) for s in styles.values()]
    assert len(set(pairs)) == len(pairs)
    assert len({s["marker"] for s in styles.values()}) == len(styles)  # the marker alone, too
    for s in styles.values():
        assert set(s) == {"color", "marker", "linestyle"}
        _, ax = plt.subplots()
        line = ax.plot([0, 1], [0, 1], **s)[0]  # matplotlib takes every style
        assert line.get_marker() == s["marker"] and line.get_linestyle() == s["linestyle"]


def test_method_style_is_the_same_for_a_method_in_every_call_and_name():
    assert plots.method_style("md-tanh-s") == plots.method_style("md-tanh-s")
    assert plots.method_style("MD-tanh-S") == plots.method_style("md-tanh-s")
    assert plots.method_style("BC") == plots.method_style("bc")
    assert plots.method_style("bc") != plots.method_style("pq")
    with pytest.raises(ValueError, match="no style for method"):
        plots.method_style("sgd")


def test_method_style_of_numbered_series_differ_in_marker_and_line():
    n = len(plots.SERIES_STYLES)
    styles = [plots.method_style(i) for i in range(n)]
    assert len({(s["marker"], s["linestyle"]) for s in styles}) == n
    assert len({s["marker"] for s in styles}) == n
    assert plots.method_style(n) == plots.method_style(0)
    assert plots.method_style(np.int64(2)) == plots.method_style(2)


def test_book_style_writes_svg_text_and_the_inline_formats_include_one_for_latex():
    import io

    with plt.rc_context():
        plots.use_book_style()
        fig, ax = plt.subplots()
        ax.set_title("a title")
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    assert ">a title</text>" in buf.getvalue()  # text, not glyph paths
    assert "svg" in plots.FIGURE_FORMATS
    assert {"pdf", "png"} & set(plots.FIGURE_FORMATS)  # what the LaTeX builder can include


def test_the_methods_drawn_together_in_a_chapter_have_different_colours():
    together = [
        ("md-tanh", "md-tanh-s", "pq-l1", "pq-l2"),  # chapter 7
        ("float", "bc", "pq", "pmf", "md-tanh-s", "md-softmax-s"),  # chapter 8
        ("float", "bc", "proxconnect-linear", "proxconnect-binaryrelax", "md-tanh-s"),  # ch. 10
    ]
    for methods in together:
        colors = [plots.method_style(m)["color"] for m in methods]
        assert len(set(colors)) == len(colors), methods
