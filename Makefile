# make demo: set up .venv if needed, then run the digits demo.
# make test: set up .venv if needed, then lint, type-check and run the test suite.
# make docs: the documentation site into docs/_build/html (warnings are errors).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed
SPHINX := $(PY) -m sphinx -b html -W --keep-going docs docs/_build/html

.PHONY: demo test lint typecheck pytest bench clean venv docs docs-noplot

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first, so nothing else can pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mixtorch.cli demo --out out

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
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache docs/_build docs/api docs/auto_examples docs/sg_execution_times.rst
