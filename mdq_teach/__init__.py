"""mdq_teach: the library behind the textbook *Mirror Descent for Neural-Network Quantization*.

The core (``maps``, ``bregman``, ``updates``, ``theory``, ``toy``, ``prox``, ``plots``) needs only
numpy, scipy and matplotlib, so the convex chapters run without torch. ``mdq_teach.nn`` is the torch
part and is imported only where networks are trained.
"""

__version__ = "0.1.0"
