"""Run a peer's own test file against mixtorch: an outsider's probe, reproducible.

Usage::

    .venv/bin/python tools/peer_tests.py scipy-kde     # SciPy's test_kdeoth.py vs GaussianKDE
    .venv/bin/python tools/peer_tests.py sklearn-gmm   # scikit-learn's test_gaussian_mixture.py

The test file is read from the peer's installed wheel, written to a temporary directory
with one change (the estimator it imports is mixtorch's, through the smallest adapter
that gives it the peer's constructor), and run there with pytest; the summary line is
printed. Nothing is copied into the repository and nothing here is part of mixtorch.
Failures are expected where the peer's tests call its private functions, match its exact
messages or rely on its internals; read them, do not chase the count.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

SCIPY_SHIM = '''
import numpy as np
from mixtorch import GaussianKDE


class gaussian_kde(GaussianKDE):
    """SciPy's constructor over mixtorch's GaussianKDE (rows are points in mixtorch)."""

    def __init__(self, dataset=None, bw_method=None, weights=None, **params):
        super().__init__(**params)
        if dataset is not None:
            self.fit(np.atleast_2d(np.asarray(dataset)).T, sample_weight=weights)
            if bw_method is not None:
                self.set_bandwidth(bw_method)

    @classmethod
    def _get_param_names(cls):
        return GaussianKDE._get_param_names()
'''

SCIPY_IMPORT = "from scipy import stats, linalg, integrate"
SCIPY_PATCH = """from scipy import stats as _scipy_stats, linalg, integrate
import types
import peer_shim
stats = types.SimpleNamespace(
    **{name: getattr(_scipy_stats, name) for name in dir(_scipy_stats) if name[:2] != "__"}
)
stats.gaussian_kde = peer_shim.gaussian_kde"""

SKLEARN_IMPORT = "from sklearn.mixture import GaussianMixture\n"
SKLEARN_PATCH = "from mixtorch import GaussianMixture\n"
SKLEARN_FIXTURES = """
import numpy as np
import pytest


@pytest.fixture(params=[np.float32, np.float64])
def global_dtype(request):
    return request.param


@pytest.fixture
def global_random_seed():
    return 42
"""


def _installed(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed in this environment.")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise SystemExit(f"{path} is missing: this {package} wheel ships no tests.")
    return path


#: suite: (package, test file in the wheel, line to replace, replacement, helper file,
#: helper text)
SUITES = {
    "scipy-kde": (
        "scipy", "stats/tests/test_kdeoth.py", SCIPY_IMPORT, SCIPY_PATCH,
        "peer_shim.py", SCIPY_SHIM,
    ),
    "sklearn-gmm": (
        "sklearn", "mixture/tests/test_gaussian_mixture.py", SKLEARN_IMPORT, SKLEARN_PATCH,
        "conftest.py", SKLEARN_FIXTURES,
    ),
}  # fmt: skip


def prepare(suite: str, directory: Path) -> Path:
    """Write the patched test file (and its helper) into ``directory``; return it."""
    package, relative, line, patch, helper, helper_text = SUITES[suite]
    path = _installed(package, relative)
    source = path.read_text()
    if line not in source:
        raise SystemExit(f"{path} no longer has the line this tool replaces: {line.strip()!r}")
    (directory / helper).write_text(helper_text)
    target = directory / path.name
    target.write_text(source.replace(line, patch, 1))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (e.g. -k name)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        target = prepare(args.suite, Path(scratch))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-W", "ignore::pytest.PytestUnknownMarkWarning", "--rootdir", scratch]
        result = subprocess.run([*command, str(target), *args.pytest_args], cwd=scratch)
    return 0 if result.returncode in (0, 1) else result.returncode


if __name__ == "__main__":
    sys.exit(main())
