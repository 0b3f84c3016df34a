"""How a test or a benchmark reaches an explorer's controls from outside, the same way for both:
``tests/test_widgets_live.py`` moves each one, ``benchmarks/widget_latency.py`` times it."""

from __future__ import annotations


def controls(box) -> list[tuple[str, object]]:
    """(name, widget) for every control of an explorer: its ``sliders`` where it has them, else
    the one ``slider`` (beta) and, for the quantizer explorer, its ``family`` and ``levels``."""
    if hasattr(box, "sliders"):
        return list(box.sliders.items())
    pairs = [("beta", box.slider)]
    if hasattr(box, "family"):
        pairs += [("family", box.family), ("levels", box.levels)]
    return pairs


def option_values(widget) -> list:
    """The values a selection slider or dropdown offers (``options`` may be (label, value))."""
    return [o[1] if isinstance(o, tuple) else o for o in widget.options]
