# make demo: set up .venv if needed, then run the digits demo.
# make test: set up .venv if needed, then lint, type-check and run the test suite.
# make test-min: build .venv-min with the oldest declared versions, run a smoke test.
# make docs: the documentation site into docs/_build/html (warnings are errors).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed
SPHINX := $(PY) -m sphinx -b html -W --keep-going docs docs/_build/html

.PHONY: demo test test-min lint typecheck pytest bench clean venv docs docs-noplot

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt
	@echo "==> setting up $(VENV) (first run only: PyTorch and the development tools, a few minutes)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(PY) -m pip install -q --upgrade pip
	@echo "==> installing PyTorch 2.13.0 (CPU build first, so nothing else can pull a CUDA build)"
	$(PY) -m pip install -q torch==2.13.0
	@echo "==> installing the pinned dependencies of requirements-dev.txt"
	$(PY) -m pip install -q -r requirements-dev.txt
	@echo "==> installing mixtorch itself (editable)"
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)
	@echo "==> $(VENV) ready"

demo: $(STAMP)
	@echo "==> running the digits demo (pictures and a report go to out/)"
	$(PY) -m mixtorch.cli demo --out out

# The oldest versions pyproject.toml declares (tools/min_requirements.py reads them), in a
# venv of their own; torch stays the CPU 2.13.0 build the development venv uses.
VENV_MIN := .venv-min
PY_MIN := $(VENV_MIN)/bin/python
test-min:
	@echo "==> building $(VENV_MIN) with the oldest declared versions"
	test -x $(PY_MIN) || $(PYTHON) -m venv $(VENV_MIN)
	$(PY_MIN) -m pip install -q torch==2.13.0
	$(PYTHON) tools/min_requirements.py plot io bayes > $(VENV_MIN)/requirements-min.txt
	cat $(VENV_MIN)/requirements-min.txt
	$(PY_MIN) -m pip install -q -r $(VENV_MIN)/requirements-min.txt
	$(PY_MIN) -m pip install -q --no-deps -e .
	@echo "==> smoke test"
	$(PY_MIN) tools/smoke_min.py plot io bayes

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples conftest.py docs/*.py
	$(VENV)/bin/ruff format --check src tests benchmarks examples conftest.py docs/*.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest

test: lint typecheck pytest

$(DOCS_STAMP): $(STAMP) requirements-docs.txt
	$(PY) -m pip install -q -r requirements-docs.txt
	touch $(DOCS_STAMP)

# The gallery runs every script in examples/: about a minute of CPU time on 2 cores
# (the Pyro/NUTS example is most of it), 3 minutes wall-clock on a busy machine.
docs: $(DOCS_STAMP)
	$(SPHINX)

# The same pages without running the examples (the gallery shows their code only).
docs-noplot: $(DOCS_STAMP)
	$(SPHINX) -D plot_gallery=0

bench: $(STAMP)
	$(PY) benchmarks/bench_em.py

clean:
	rm -rf $(VENV) $(VENV_MIN) out .pytest_cache .mypy_cache .ruff_cache docs/_build docs/api docs/auto_examples docs/sg_execution_times.rst
