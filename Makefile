# Two entry points, each doing all of its own set-up on a fresh machine:
#   make book   virtual environment + package + data, then the executed Jupyter Book in _build/html
#   make test   the same set-up, then the test suite
# A second run reuses .venv (rebuilt only when pyproject.toml changes) and the book's execution cache.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build keeps a laptop or CI install small; set TORCH="torch" (or a CUDA wheel) for a GPU machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: book test data lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[torch,book,test]"
	$(BIN)/python -m mdq_teach.widgets.labsetup >/dev/null
	touch $@

data: $(STAMP)
	$(BIN)/python -m mdq_teach.fetch fashion-mnist

book: $(STAMP) data
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "Book built: file://$(CURDIR)/_build/html/index.html"
	@$(BIN)/python -c "import os, webbrowser; os.environ.get('DISPLAY') and webbrowser.open('file://$(CURDIR)/_build/html/index.html')" || true

test: $(STAMP) data
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build
