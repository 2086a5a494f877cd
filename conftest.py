"""Doctest set-up: the Examples sections of the docstrings under ``src/mixtorch`` and the
user guide's ``>>>`` examples (``docs/user_guide/*.rst``) run as tests
(``--doctest-modules`` and ``--doctest-glob`` in pyproject's pytest options, so
``make test`` runs them).

Every docstring example starts from the same state: NumPy and torch seeded, short
printing, one thread, so printed numbers are the same on every machine.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _pytest.doctest import DoctestItem

PACKAGE = Path("src") / "mixtorch"

# Plots in examples draw off screen.
os.environ.setdefault("MPLBACKEND", "Agg")

# ``python -m mixtorch`` runs the CLI when imported; it has no examples.
collect_ignore = [str(PACKAGE / "__main__.py")]

# Modules that need an optional extra: skipped from doctest collection when it is absent
# (the minimal-dependency test run), collected everywhere else.
_EXTRAS = {
    "pyro": ["bayes"],
    "matplotlib": ["plotting.py", "_plot_common.py", "_plot_diagnostics.py"],
}
for _module, _paths in _EXTRAS.items():
    if importlib.util.find_spec(_module) is None:
        collect_ignore += [str(PACKAGE / path) for path in _paths]


@pytest.fixture(autouse=True)
def _doctest_state(request: pytest.FixtureRequest, doctest_namespace: dict) -> object:
    """Seeded, single-threaded, short-printing state for docstring examples only."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    doctest_namespace["np"] = np
    doctest_namespace["torch"] = torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.set_printoptions(precision=4, sci_mode=False)
    with np.printoptions(precision=4, suppress=True, legacy=False):
        yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    torch.set_printoptions(profile="default")
    torch.set_num_threads(threads)
