"""Opening a chapter in JupyterLab and saving it must not rewrite its source.

JupyterLab saves a chapter through jupytext with the settings of ``jupytext.toml``; a chapter whose
cell metadata is written in another YAML style than jupytext's own would change on every save (the
JupyterLab test shows this through a browser for the widget chapters; this checks every chapter).
"""

from pathlib import Path

import jupytext
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(
    p for p in (ROOT / "book").glob("*.md") if p.read_text().startswith("---\njupytext")
)


def test_every_numbered_chapter_is_a_jupytext_notebook():
    numbered = {p.name for p in (ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert numbered and numbered <= {p.name for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_saving_through_jupytext_keeps_the_source(path, tmp_path):
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(ROOT)))
    out = tmp_path / path.name
    jupytext.write(jupytext.read(path), out, fmt="md:myst", config=config)
    assert out.read_text() == path.read_text(), f"{path.name} changes when saved by jupytext"
