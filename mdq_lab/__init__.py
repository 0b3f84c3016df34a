"""JupyterLab's set-up for the book's chapters, kept apart from the library the chapters teach.

``install`` writes (and ``--uninstall`` undoes) the settings, the server extension (``server``)
and the citations extension (``cite``, its JavaScript in ``cite.js``); ``manifest`` records what
each file held before; ``markup`` checks that a chapter's prose reads the same in JupyterLab as in
the book. Nothing in ``mdq_teach`` imports this package.
"""
