"""ipywidgets explorers used by the chapters, one module per chapter topic.

Each explorer separates a pure ``update`` function (parameters in, figure data out) from the
drawing (``draw`` builds the artists once, ``redraw`` moves them) and from the ipywidgets wiring
(``_live``: one frozen layout, blitting, a canvas that receives only changed pixels, coalesced
events, idle-time prefetch), so the update is tested and benchmarked without a browser or a
kernel. ipywidgets is imported lazily inside the explorer functions, so the math core never needs
it.

``projector()`` (or ``set_scale(s)``) enlarges every explorer for a classroom projector.
"""

from mdq_teach.widgets._live import get_scale, projector, set_scale

__all__ = ["get_scale", "projector", "set_scale"]
