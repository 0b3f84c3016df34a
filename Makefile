# Two entry points, each doing all of its own set-up on a fresh machine:
#   make book   virtual environment + package + data + MathJax (npm), then the executed Jupyter Book
#               in _build/html
#   make test   the same set-up and book build, Chromium (apt) for the browser test, then the test suite
#   make pdf    the same set-up, TeX (apt), then the whole book as one PDF in _build/latex/book.pdf,
#               and the HTML book again, now linking to it
#   make test-pdf   make pdf, then tests/test_pdf.py (not part of make test, which stays under 15 min)
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

# The whole book as one PDF through XeLaTeX (latex section of _config.yml; book/_ext/pdf_book.py).
# TeX from Debian's packages, installed by the rule when xelatex, latexmk, a package of each of
# them or the poppler tools (tests/test_pdf.py reads the PDF with them) are missing.
TEX_PACKAGES := texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended \
	fonts-freefont-otf latexmk poppler-utils
TEX_READY := command -v xelatex && command -v latexmk && command -v pdftotext && command -v pdfimages \
	&& kpsewhich pgfplots.sty tabulary.sty fncychap.sty && fc-list | grep -q FreeSerif
PDF := _build/latex/book.pdf

.PHONY: tex pdf test-pdf

tex:
	@{ $(TEX_READY); } >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(TEX_PACKAGES); \
		else \
			echo "make pdf needs TeX: run 'sudo apt-get install -y --no-install-recommends $(TEX_PACKAGES)'"; \
			exit 1; \
		fi; }

# The PDF first (executing the chapters that the cache in _build/.jupyter_cache lacks), then the HTML
# book from the same cache: its pages link to the PDF, copied into _build/html/_downloads/pdf/.
pdf: $(LAB_STAMP) $(NPM_STAMP) data tex
	$(BIN)/jupyter-book build -W -n --keep-going --builder pdflatex .
	$(MAKE) html
	@echo "PDF built: $(CURDIR)/$(PDF) ($$(pdfinfo $(PDF) | sed -n 's/^Pages: *//p') pages)"

test-pdf: pdf
	MDQ_TEST_PDF=1 $(BIN)/python -m pytest -q tests/test_pdf.py

# Python with ruff; every .js file with Biome (pinned in package.json, rules in biome.json).
lint: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check .
	node_modules/.bin/biome lint --error-on-warnings .

clean:
	rm -rf _build
