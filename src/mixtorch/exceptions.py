"""Warnings and errors that mixtorch raises on purpose (besides ValueError and TypeError)."""

from __future__ import annotations

__all__ = ["DegenerateComponentWarning", "DivergenceError"]


class DegenerateComponentWarning(UserWarning):
    """A fitted component collapsed: its variance sits at the ``reg_covar`` floor.

    The likelihood of a Gaussian mixture is unbounded: a component can shrink onto a
    single point (or a few identical points) and its density there grows without limit.
    ``reg_covar`` keeps the numbers finite, but such a component describes one point, not
    a cluster. Remedies: fewer components, a larger ``reg_covar``, de-duplicated data, or
    :class:`~mixtorch.BayesianGaussianMixture`, whose prior keeps components apart.
    """


class DivergenceError(ValueError, FloatingPointError):
    """An iterative fit diverged (its objective ended far worse than it started, or
    stopped being finite).

    A ``ValueError`` because the cause is almost always a parameter (typically the
    learning rate); also a ``FloatingPointError`` for callers catching numeric failures.
    """
