"""Run a peer's own test file against mixtorch: an outsider's probe, reproducible.

Usage::

    .venv/bin/python tools/peer_tests.py scipy-kde     # SciPy's test_kdeoth.py vs GaussianKDE
    .venv/bin/python tools/peer_tests.py sklearn-gmm   # scikit-learn's test_gaussian_mixture.py
    .venv/bin/python tools/peer_tests.py scipy-mvn     # SciPy's TestMultivariateNormal vs Gaussian
    .venv/bin/python tools/peer_tests.py sklearn-bgm   # scikit-learn's test_bayesian_mixture.py
    .venv/bin/python tools/peer_tests.py sklearn-kde   # scikit-learn's neighbors test_kde.py
    .venv/bin/python tools/peer_tests.py sklearn-kde -- -rfs -k sampling   # pytest options

The test file is read from the peer's installed wheel, written to a temporary directory
with one change (the estimator it imports is mixtorch's, through the smallest adapter
that gives it the peer's constructor), and run there with pytest; the summary line is
printed. Nothing is copied into the repository and nothing here is part of mixtorch.
Failures are expected where the peer's tests call its private functions, match its exact
messages or rely on its internals; read them, do not chase the count.

``sklearn-kde`` puts scikit-learn's ``KernelDensity`` constructor over ``GaussianKDE``,
which has the Gaussian kernel and the Euclidean metric only: any other ``kernel`` or
``metric`` raises ``NotImplementedError`` at ``fit``, so those tests fail, visibly.
scikit-learn's tree-search options (``algorithm``, ``atol``, ``rtol``, ``breadth_first``,
``leaf_size``) are accepted and ignored (mixtorch's sums are exact), and a string
bandwidth keeps mixtorch's meaning (SciPy's rules, scaled by the data covariance).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
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

SKLEARN_KDE_SHIM = '''
from mixtorch import GaussianKDE


class KernelDensity(GaussianKDE):
    """scikit-learn's constructor over mixtorch's GaussianKDE (Gaussian kernel only)."""

    def __init__(
        self, bandwidth=1.0, *, kernel="gaussian", metric="euclidean", metric_params=None,
        **search,
    ):
        super().__init__(bandwidth)
        self.kernel, self.metric, self.metric_params = kernel, metric, metric_params

    def fit(self, X, y=None, sample_weight=None):
        euclidean = self.metric == "euclidean" or (
            self.metric == "minkowski" and (self.metric_params or {}).get("p", 2) == 2
        )
        if self.kernel != "gaussian" or not euclidean:
            raise NotImplementedError(
                f"mixtorch has no kernel={self.kernel!r} with metric={self.metric!r}"
            )
        return super().fit(X, y, sample_weight)
'''

SCIPY_MVN_SHIM = '''
import numpy as np
import torch
from mixtorch import Gaussian, Mixture


def _gaussian(mean=None, cov=1, seed=None):
    """A Gaussian with known parameters; SciPy's scalar, 1-D and 2-D ``cov`` are
    mixtorch's 'spherical', 'diag' and 'full' layouts. No broadcasting beyond that."""
    cov = np.asarray(cov, dtype=float)
    kind = {0: "spherical", 1: "diag"}.get(cov.ndim, "full")
    if mean is None:
        mean = np.zeros(cov.shape[0] if cov.ndim else 1)
    mean = np.atleast_1d(np.asarray(mean, dtype=float))
    mixture = Mixture.from_parameters(
        [1.0], mean[None], cov.reshape(1) if kind == "spherical" else cov[None], kind,
        dtype=torch.float64,
    )
    return Gaussian.from_mixture(mixture, random_state=seed)


class _MultivariateNormal:
    """SciPy's ``multivariate_normal`` calls over a fitted mixtorch Gaussian: calling it
    gives the frozen distribution (the Gaussian itself); the other calls freeze first.
    ``allow_singular`` is accepted and ignored (mixtorch has no singular Gaussians, so
    singular matrices are refused); SciPy's other options are not accepted."""

    def __call__(self, mean=None, cov=1, allow_singular=False, seed=None):
        return _gaussian(mean, cov, seed)

    def logpdf(self, x, mean=None, cov=1, allow_singular=False):
        return _gaussian(mean, cov).logpdf(x)

    def pdf(self, x, mean=None, cov=1, allow_singular=False):
        return _gaussian(mean, cov).pdf(x)

    def logcdf(self, x, mean=None, cov=1, allow_singular=False, *, lower_limit=None, rng=None):
        return _gaussian(mean, cov).logcdf(x, lower_limit=lower_limit, rng=rng)

    def cdf(self, x, mean=None, cov=1, allow_singular=False, *, lower_limit=None, rng=None):
        return _gaussian(mean, cov).cdf(x, lower_limit=lower_limit, rng=rng)

    def rvs(self, mean=None, cov=1, size=1, random_state=None):
        return _gaussian(mean, cov).rvs(size, random_state=random_state)

    def entropy(self, mean=None, cov=1):
        return _gaussian(mean, cov).entropy()

    def fit(self, x, fix_mean=None, fix_cov=None):
        """Passed through as given: for one feature a scalar ``fix_mean`` and a scalar or
        (1,) ``fix_cov`` are taken, as SciPy takes them."""
        model = Gaussian(fixed_mean=fix_mean, fixed_covariance=fix_cov).fit(x)
        return model.mean_, model.covariance_


multivariate_normal = _MultivariateNormal()
'''

SCIPY_IMPORT = "from scipy import stats, linalg, integrate"
SCIPY_PATCH = """from scipy import stats as _scipy_stats, linalg, integrate
import types
import peer_shim
stats = types.SimpleNamespace(
    **{name: getattr(_scipy_stats, name) for name in dir(_scipy_stats) if name[:2] != "__"}
)
stats.gaussian_kde = peer_shim.gaussian_kde"""

SCIPY_MVN_IMPORT = "from scipy.stats import (multivariate_normal, multivariate_hypergeom,"
SCIPY_MVN_PATCH = (
    "from peer_shim import multivariate_normal\nfrom scipy.stats import (multivariate_hypergeom,"
)

SKLEARN_IMPORT = "from sklearn.mixture import GaussianMixture\n"
SKLEARN_PATCH = "from mixtorch import GaussianMixture\n"
SKLEARN_BGM_IMPORT = "from sklearn.mixture import BayesianGaussianMixture\n"
SKLEARN_BGM_PATCH = "from mixtorch import BayesianGaussianMixture\n"
SKLEARN_KDE_IMPORT = "from sklearn.neighbors import KDTree, KernelDensity, NearestNeighbors\n"
SKLEARN_KDE_PATCH = (
    "from sklearn.neighbors import KDTree, NearestNeighbors\nfrom peer_shim import KernelDensity\n"
)
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
    "scipy-mvn": (
        "scipy", "stats/tests/test_multivariate.py", SCIPY_MVN_IMPORT, SCIPY_MVN_PATCH,
        "peer_shim.py", SCIPY_MVN_SHIM,
    ),
    "sklearn-bgm": (
        "sklearn", "mixture/tests/test_bayesian_mixture.py", SKLEARN_BGM_IMPORT,
        SKLEARN_BGM_PATCH, "conftest.py", SKLEARN_FIXTURES,
    ),
    "sklearn-kde": (
        "sklearn", "neighbors/tests/test_kde.py", SKLEARN_KDE_IMPORT, SKLEARN_KDE_PATCH,
        "peer_shim.py", SKLEARN_KDE_SHIM,
    ),
}  # fmt: skip

#: suite: the part of its test file that is run (a pytest node id suffix)
SELECTIONS = {"scipy-mvn": "::TestMultivariateNormal"}


def prepare(suite: str, directory: Path) -> Path:
    """Write the patched test file (and its helper) into ``directory``; return it."""
    package, relative, line, patch, helper, helper_text = SUITES[suite]
    path = _installed(package, relative)
    source = path.read_text()
    if line not in source:
        raise SystemExit(f"{path} no longer has the line this tool replaces: {line.strip()!r}")
    (directory / helper).write_text(helper_text)
    target = directory / path.name
    patched = source.replace(line, patch, 1)
    # the copy is outside the peer's package: its relative imports name the package
    parent = ".".join((package, *Path(relative).parent.parts))
    target.write_text(re.sub(r"^from \.(?=\w)", f"from {parent}.", patched, flags=re.M))
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
        selected = str(target) + SELECTIONS.get(args.suite, "")
        result = subprocess.run([*command, selected, *args.pytest_args], cwd=scratch)
    return 0 if result.returncode in (0, 1) else result.returncode


if __name__ == "__main__":
    sys.exit(main())
