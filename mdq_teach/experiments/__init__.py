"""Experiment tooling around the optimizer, not part of it: run records (``results``), the GPU
suite that produces them (``gpu_suite``) and the tables and figures chapter 11 reads from them
(``gpu_report``). ``results`` needs no torch; running the suite does.
"""
