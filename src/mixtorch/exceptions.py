"""Warnings and errors that mixtorch raises on purpose (besides ValueError and TypeError)."""

from __future__ import annotations

__all__ = ["DegenerateComponentWarning", "DivergenceError"]


class DegenerateComponentWarning(UserWarning):
    """A fitted component collapsed: its variance sits at the ``reg_covar`` floor.

    The likelihood of a Gaussian mixture is unbounded [1]_: a component can shrink onto a
    single point (or a few identical points) and its density there grows without limit.
    ``reg_covar`` keeps the numbers finite, but such a component describes one point, not
    a cluster. Remedies: fewer components, a larger ``reg_covar``, de-duplicated data, or
    :class:`~mixtorch.BayesianGaussianMixture`, whose prior keeps components apart.

    See Also
    --------
    mixtorch.CovarianceError : A covariance that could not be factored at all.
    sklearn.exceptions.ConvergenceWarning : Warned when EM stops at ``max_iter``.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2.1 (singularities of the mixture likelihood).

    Examples
    --------
    >>> import warnings
    >>> from mixtorch.exceptions import DegenerateComponentWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", DegenerateComponentWarning)  # make it an error
    ...     issubclass(DegenerateComponentWarning, UserWarning)
    True
    """


class DivergenceError(ValueError, FloatingPointError):
    """An iterative fit diverged (its objective ended far worse than it started, or
    stopped being finite).

    A ``ValueError`` because the cause is almost always a parameter (typically the
    learning rate of ``algorithm='gradient'``); also a ``FloatingPointError`` for callers
    catching numeric failures. The message names the parameter to change.

    See Also
    --------
    mixtorch.GaussianMixture : ``algorithm='gradient'`` and ``learning_rate``.
    mixtorch.Gaussian : The same for one Gaussian.

    Examples
    --------
    >>> from mixtorch.exceptions import DivergenceError
    >>> issubclass(DivergenceError, ValueError), issubclass(DivergenceError, FloatingPointError)
    (True, True)
    """
