"""Every chapter in the table of contents executes without a cell error (as the book build does)."""

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from run_chapter import run  # noqa: E402

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [
    c["file"] for part in TOC["parts"] for c in part["chapters"] if c["file"][5:7].isdigit()
]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executes(chapter):
    run(ROOT / f"{chapter}.md")
