# Two entry points, each doing all of its own set-up on a fresh machine:
#   make book   virtual environment + package + data + MathJax (npm), then the executed Jupyter Book
#               in _build/html
#   make test   the same set-up and book build, Chromium (apt) for the browser test, then the test suite
# A second run reuses .venv (rebuilt only when pyproject.toml changes), node_modules (rebuilt only when
# package-lock.json changes) and the book's execution cache.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build keeps a laptop or CI install small; set TORCH="torch" (or a CUDA wheel) for a GPU machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
LAB_STAMP := $(VENV)/.labsetup
# The book serves MathJax itself (no CDN): npm installs the version pinned in package-lock.json,
# axe-core, which the browser test injects into every page, and Biome, the JavaScript linter.
NPM_STAMP := node_modules/.installed
# Debian's Chromium, driven by Playwright in tests/test_book_browser.py (Playwright's own browser
# downloads are not used).
CHROMIUM ?= /usr/bin/chromium

.PHONY: book html test data lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[torch,book,test]"
	touch $@

# JupyterLab's set-up for the chapters (settings, server extension, citations from the book's
# bibliography): redone when any of what it writes from changes, not only with a new environment.
$(LAB_STAMP): $(STAMP) book/references.bib book/_ext/bib_author_year.py $(wildcard mdq_lab/*.py mdq_lab/*.js)
	$(BIN)/python -m mdq_lab.install --bib book/references.bib >/dev/null
	touch $@

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm; } || { echo "npm is needed to install MathJax for the book: install Node.js and npm"; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "The browser test needs Debian's Chromium at $(CHROMIUM): run 'sudo apt-get install -y chromium' (or set CHROMIUM=/path/to/chromium)"; \
		exit 1; \
	fi

data: $(STAMP)
	$(BIN)/python -m mdq_teach.fetch fashion-mnist

html: $(LAB_STAMP) $(NPM_STAMP) data
	$(BIN)/jupyter-book build -W -n --keep-going .

book: html
	@echo "Book built: file://$(CURDIR)/_build/html/index.html"
	@$(BIN)/python -c "import os, webbrowser; os.environ.get('DISPLAY') and webbrowser.open('file://$(CURDIR)/_build/html/index.html')" || true

# The book build executes every chapter; the tests then check its executed notebooks and open every
# page in Chromium.
test: html $(CHROMIUM)
	MDQ_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q

# Python with ruff; every .js file with Biome (pinned in package.json, rules in biome.json).
lint: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check .
	node_modules/.bin/biome lint --error-on-warnings .

clean:
	rm -rf _build
