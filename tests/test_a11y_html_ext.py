"""The book's Sphinx extension book/_ext/a11y_html.py on its own, without a book build: the markup
the themes (pydata-sphinx-theme 0.17, sphinx-book-theme 1.3), myst-nb 1.4 and docutils write, as
copied from a built page, before and after."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import a11y_html  # noqa: E402

PAGE = """
<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar">
<button class="btn search-button-field search-button__button pst-js-only" title="Search" \
aria-label="Search" data-bs-placement="bottom" data-bs-toggle="tooltip">
 <span class="search-button__default-text">Search</span></button>
<button class="btn btn-sm nav-link pst-navbar-icon theme-switch-button pst-js-only" \
aria-label="Color mode" data-bs-title="Color mode"  data-bs-placement="bottom">
  <i class="theme-switch fa-solid fa-sun                fa-lg" data-mode="light" title="Light"></i>
  <i class="theme-switch fa-solid fa-moon               fa-lg" data-mode="dark"  title="Dark"></i>
  <i class="theme-switch fa-solid fa-circle-half-stroke fa-lg" data-mode="auto"  \
title="System Settings"></i>
</button>
<details class="hide above-input">
<summary aria-label="Toggle hidden content">
<p class="collapsed admonition-title">Show code cell source</p>
</summary></details>
<div role="list" class="citation-list">
<div class="citation" id="id6" role="doc-biblioentry">
"""


def test_every_rewrite_applies_and_nothing_is_left_over():
    fixed, counts = a11y_html.fix_html(PAGE)
    assert counts == {
        "code-cell toggle": 1, "search button": 1, "colour-mode icon": 3,
        "bibliography entry": 1, "primary sidebar": 1,
    }
    assert not a11y_html.LEFT_OVER.search(fixed)
    assert "<summary>\n" in fixed
    assert 'aria-label="Color mode"' in fixed and fixed.count('aria-hidden="true"></i>') == 3
    assert 'title="Search" data-bs-placement' in fixed
    assert '<div class="citation" id="id6" role="listitem">' in fixed
    assert 'class="bd-sidebar-primary bd-sidebar" role="navigation" aria-label="Book">' in fixed
    assert a11y_html.LEFT_OVER.search(PAGE)


def test_a_fixed_page_stays_as_it_is():
    fixed, _ = a11y_html.fix_html(PAGE)
    again, counts = a11y_html.fix_html(fixed)
    assert again == fixed and not any(counts.values())


def test_axe_core_is_pinned_exactly_and_the_extension_is_on():
    import json

    import yaml

    version = json.loads((ROOT / "package.json").read_text())["devDependencies"]["axe-core"]
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert version[0].isdigit(), f"axe-core {version!r}: an exact version, not a range"
    assert lock["packages"]["node_modules/axe-core"]["version"] == version
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    assert config["local_extensions"]["a11y_html"] == "book/_ext"
