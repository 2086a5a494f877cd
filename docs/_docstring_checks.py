"""numpydoc validation of the API reference's docstrings, as build warnings.

numpydoc's own ``numpydoc_validation_exclude_files`` skips *rendering* the docstrings of
the files it excludes, not only their validation, so the scope is applied here instead:
every class, function and method the reference documents whose code lives in one of
:data:`VALIDATED_MODULES` is checked with :func:`numpydoc.validate.validate`, and each
finding is a Sphinx warning (an error under ``-W``, as ``make docs`` builds).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

from numpydoc.validate import validate
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Modules (``obj.__module__``) whose public docstrings are validated.
VALIDATED_MODULES = re.compile(
    r"^mixtorch\.(gaussian|_gaussian_\w+|mixture|_mixture_\w+|conditioning|_features|selection|_selection_\w+|regression"
    r"|impute|nn|_module\w*|plotting|_plot_diagnostics|_plot_samples|sources|_chunk_source|_chunk_budget|_file_sources"
    r"|_kde_scipy\w*|io|_model_file|_model_path|_load_checks|exceptions|stats|_sufficient_statistics|distributed|covariance(\.\w+)?"
    r"|_wishart|bayes\.(model|prior|relabel|plotting)|fit\.(em|kmeans|_kmeans_\w+|gradient\w*"
    r"|variational|_variational_\w+|streaming|_reservoir|stepwise|bandwidth|_bandwidth_data"
    r"|_loo_matrix))$"
)

#: Every parameter documented with a type and a description; no unknown parameters;
#: a Returns section with a description wherever something is returned; See Also.
CHECKS = {"PR01", "PR02", "PR03", "PR07", "PR10", "RT01", "RT03", "SA01"}

#: Public classes and functions (not methods) also need Examples.
TOP_LEVEL_CHECKS = {"EX01"}

#: Findings that are numpydoc's limits rather than missing documentation.
IGNORED = {
    # numpydoc drops a first parameter named ``cls`` from a plain function's signature.
    "mixtorch.io.register_estimator": {"PR02"},
}


def _module(obj: Any) -> str:
    return str(getattr(inspect.unwrap(obj), "__module__", "") or "")


def validate_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """``autodoc-process-docstring`` handler: warn about each numpydoc finding."""
    if what not in ("class", "function", "method") or not VALIDATED_MODULES.match(_module(obj)):
        return
    checks = CHECKS | (TOP_LEVEL_CHECKS if what in ("class", "function") else set())
    if dataclasses.is_dataclass(obj):  # its fields are documented under Attributes
        checks = checks - {"PR01"}
    checks = checks - IGNORED.get(name, set())
    try:
        errors = validate(name)["errors"]
    except Exception as error:  # an object numpydoc cannot import by name
        logger.warning("[docstring checks] cannot validate %s: %s", name, error)
        return
    for code, message in errors:
        if code in checks:
            logger.warning("[docstring checks] %s: %s %s", name, code, message)
