"""The parameter constraints the estimators share, declared scikit-learn's way for
``_parameter_constraints``: ``sklearn.mixture``'s ``BaseMixture`` ones plus mixtorch's
(``chunk_size``, ``random_state`` with torch generators, ``optimizer`` names in any case).
Re-exported by :mod:`mixtorch._estimator`."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .covariance import COVARIANCE_TYPES
from .fit.gradient import OPTIMIZERS
from .fit.init import INIT_METHODS

#: ``chunk_size`` everywhere: rows per chunk, or None for the covariance type's default.
CHUNK_SIZE: list[Any] = [Interval(Integral, 1, None, closed="left"), None]
#: ``random_state`` as every estimator accepts it: None, an int, NumPy's RandomState or
#: Generator, or a torch.Generator.
RANDOM_STATE: list[Any] = ["random_state", np.random.Generator, torch.Generator]


class AnyCaseOptions(StrOptions):
    """Names matched whatever their case: torch spells its optimisers ``Adam`` and
    ``SGD``, and a user who copies that spelling means the same thing as ``'adam'``.

    The ``options`` are given in lower case.
    """

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, str) and val.lower() in self.options

    def __str__(self) -> str:
        names = ", ".join(repr(name) for name in sorted(self.options))
        return f"a str among {{{names}}} (in any case)"


#: ``optimizer`` for gradient fitting: a name of :data:`~mixtorch.fit.gradient.OPTIMIZERS`
#: in any case (``'adam'`` or torch's ``'Adam'``), an optimiser class or a factory.
OPTIMIZER: list[Any] = [AnyCaseOptions(set(OPTIMIZERS)), callable]

#: The constraints of scikit-learn's ``BaseMixture`` plus mixtorch's own shared ones.
MIXTURE_CONSTRAINTS: dict[str, list[Any]] = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
    "tol": [Interval(Real, 0.0, None, closed="left")],
    "reg_covar": [Interval(Real, 0.0, None, closed="left")],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "n_init": [Interval(Integral, 1, None, closed="left")],
    "init_params": [StrOptions(set(INIT_METHODS))],
    "random_state": RANDOM_STATE,
    "warm_start": ["boolean"],
    "verbose": ["verbose"],
    "verbose_interval": [Interval(Integral, 1, None, closed="left")],
    "chunk_size": CHUNK_SIZE,
    # validated when resolved: they depend on the input and on the hardware
    "device": "no_validation",  # type: ignore[dict-item]
    "dtype": "no_validation",  # type: ignore[dict-item]
}


def mixture_constraints(*names: str) -> dict[str, list[Any]]:
    """The shared constraints of ``names`` (for estimators taking a subset of them)."""
    return {name: MIXTURE_CONSTRAINTS[name] for name in names}
