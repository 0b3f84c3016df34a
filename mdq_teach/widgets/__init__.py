"""ipywidgets explorers used by the chapters, one module per chapter topic.

Each explorer separates a pure ``update`` function (parameters in, figure data or a redrawn figure
out) from the ipywidgets wiring, so the update is tested and benchmarked without a browser or
a kernel.
ipywidgets is imported lazily inside the ``*_explorer`` functions, so the math core never needs it.
"""
