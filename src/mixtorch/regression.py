"""``GaussianMixtureRegressor``: regression by conditioning a joint Gaussian mixture.

Gaussian mixture regression (Ghahramani & Jordan 1994; Sung 2004) fits one mixture to the
joint vectors ``[x, y]`` and predicts with the conditional ``p(y | x)``, itself a Gaussian
mixture (see :mod:`mixtorch.conditioning`). Its mean is a smooth, locally linear
regression; its spread and its several modes say what least squares cannot: that a target
may take one of several values for the same input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ._base import JointMixtureMixin
from ._estimator import keeps_state_on_failure, mixture_constraints
from ._mixture_checks import check_n_samples
from ._validation import (
    OutputKind,
    as_output,
    check_device,
    check_random_generator,
    refuse_meta,
    resolve_dtype,
    validate_with_advice,
)
from .conditioning import Conditionals
from .covariance import CovarianceError
from .gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixtureRegressor"]


class GaussianMixtureRegressor(JointMixtureMixin, RegressorMixin, BaseEstimator):
    """Regression with the conditional of a Gaussian mixture fitted to ``[X, y]``.

    ``fit`` fits a :class:`~mixtorch.GaussianMixture` (by EM, with all its numerics) to
    the joint rows ``[x, y]``; ``predict`` returns ``E[y | x]``, the mean of the
    conditional mixture [1]_ [2]_, for many rows in one vectorised pass. With one
    component and full covariances this is ordinary least squares; with several it is a
    smooth blend of local linear regressions, weighted by how well each component explains
    ``x``.

    Parameters
    ----------
    n_components : int, default=1
        Components K of the joint mixture; more components follow a more curved (or
        multi-valued) relation, at the price of more parameters.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Covariance of the joint mixture. Only 'full' and 'tied' couple ``y`` to ``x``
        inside a component; with 'diag'/'spherical' the prediction depends on ``x``
        only through the component weights.
    tol : float, default=1e-3
        EM convergence threshold on the change of the mean log-likelihood per sample.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance of the joint mixture. When ``y`` is
        (nearly) an exact linear function of ``X``, or there are fewer rows than columns of
        ``[X, y]``, the joint covariance is singular and only ``reg_covar`` keeps it
        positive definite; it must then exceed the rounding of the computation dtype at the
        data's scale (about ``np.finfo(dtype).eps`` times the largest variance), which the
        default does not in float32 for variances above about 10. The fit's error then
        names the value to pass.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations of the joint fit; the best is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the joint fit is started, as in :class:`~mixtorch.GaussianMixture`.
    random_state : int, RandomState, Generator or torch.Generator, default=None
        Seeds the fit and, unless ``sample_y`` is given its own, the draws of ``sample_y``.
    chunk_size : int, default=None
        Rows per chunk when fitting, bounding memory; None picks a size from K and D.
    device : str or torch.device, default=None
        Where to compute; None uses the input tensor's device (CPU for NumPy input).
    dtype : {'float32', 'float64'} or torch.dtype, default=None
        Computation dtype; None keeps float32 input in float32, otherwise float64.
        float32 needs a larger ``reg_covar`` on collinear data (see there).

    Attributes
    ----------
    mixture_model_ : GaussianMixture
        The joint mixture over ``[x, y]`` (inputs first, then targets).
    n_features_in_ : int
        Number of input features (columns of ``X``).
    n_targets_ : int
        Number of targets (columns of ``y``).
    n_iter_ : int
        EM iterations of the joint fit.
    converged_ : bool
        Whether the joint fit converged.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` has string column names.

    See Also
    --------
    mixtorch.GaussianMixtureImputer : Conditions on whichever entries are observed.
    mixtorch.Mixture.conditionals : The conditional mixtures used for prediction.
    sklearn.gaussian_process.GaussianProcessRegressor : Same ``predict(return_std=True)``
        and ``sample_y`` interface.

    References
    ----------
    .. [1] Z. Ghahramani and M. I. Jordan (1994), "Supervised learning from incomplete
       data via an EM approach", *NIPS 6*.
    .. [2] H. G. Sung (2004), "Gaussian mixture regression and classification", PhD
       thesis, Rice University.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixtureRegressor
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-3, 3, size=(400, 1))
    >>> y = np.sin(x[:, 0]) + 0.05 * rng.normal(size=400)
    >>> model = GaussianMixtureRegressor(n_components=6, random_state=0).fit(x, y)
    >>> mean, std = model.predict([[0.5]], return_std=True)
    >>> round(float(mean[0]), 1), bool(std[0] < 0.2)
    (0.5, True)
    """

    _parameter_constraints: dict[str, list[Any]] = mixture_constraints(
        "n_components",
        "covariance_type",
        "tol",
        "reg_covar",
        "max_iter",
        "n_init",
        "init_params",
        "random_state",
        "chunk_size",
        "device",
        "dtype",
    )

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
        chunk_size: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    @keeps_state_on_failure
    def fit(self, X: Any, y: Any) -> GaussianMixtureRegressor:
        """Fit the joint mixture of ``[X, y]``.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Inputs, finite, at least two rows.
        y : array-like or Tensor of shape (n_samples,) or (n_samples, n_targets)
            Targets; a 1-D ``y`` makes :meth:`predict` return 1-D predictions.

        Returns
        -------
        self : GaussianMixtureRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            For non-finite values, mismatched row counts or fewer than two rows.
        CovarianceError
            A ``ValueError``, when a joint covariance cannot be factored; if ``reg_covar``
            is below the dtype's rounding at the data's scale, the message gives the
            ``reg_covar`` to pass (and, in float32, suggests ``dtype='float64'``).

        See Also
        --------
        mixtorch.GaussianMixture.fit : The joint fit it runs.
        """
        self._validate_params()
        inputs, targets = self._validated_xy(X, y)
        joint = torch.cat([inputs, targets.reshape(targets.shape[0], -1)], dim=1)
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        try:
            self.mixture_model_ = GaussianMixture(**params).fit(joint)
        except CovarianceError as error:
            advice = _rounding_advice(joint, self.reg_covar)
            if advice is None:
                raise
            raise CovarianceError(advice) from error
        self.n_targets_ = joint.shape[1] - inputs.shape[1]
        self.n_iter_ = self.mixture_model_.n_iter_
        self.converged_ = self.mixture_model_.converged_
        self._single_target = targets.ndim == 1
        return self

    def _after_load(self) -> None:
        """Called by :func:`mixtorch.load` once the fitted attributes are set: a file whose
        one-target flag contradicts its number of targets (edited by hand) would predict
        only the first target, so it is refused."""
        single = vars(self).get("_single_target")
        if not isinstance(single, bool) or (single and self.n_targets_ != 1):
            raise ValueError(
                f"_single_target is {single!r} for {self.n_targets_!r} targets (it must be a "
                "bool, True only for one target)"
            )

    def __mixtorch_joint_features__(self) -> int:
        """The columns of ``[X, y]``: the features, then the targets."""
        return self._fitted_count("n_features_in_") + self._fitted_count("n_targets_")

    def _validated_xy(self, X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        X_np, y_np = host_values(X, "X"), host_values(y, "y")
        try:
            X_np, y_np = validate_with_advice(
                self,
                X_np,
                y_np,
                multi_output=True,
                y_numeric=True,
                dtype=[np.float64, np.float32],
                ensure_min_samples=2,
            )
            y_np = np.asarray(y_np, dtype=np.float64)
        except ValueError as error:
            text = str(error).startswith("could not convert") and _holds_text(y_np)
            if text and not _holds_text(X_np):
                raise ValueError(
                    f"y must hold numbers (the targets of a regression), got {error}. "
                    "Encode the targets as numbers, or use a classifier for class labels."
                ) from None
            raise
        dtype = resolve_dtype(self.dtype, X_np)
        device = _device(self.device, X)
        inputs = torch.tensor(X_np, dtype=dtype, device=device)
        targets = torch.tensor(y_np, dtype=dtype, device=device)
        return inputs, targets

    def _conditionals(self, X: Any) -> tuple[Conditionals, OutputKind]:
        check_is_fitted(self, "mixture_model_")
        kind = OutputKind.of(X)
        X_np = validate_with_advice(
            self, host_values(X, "X"), reset=False, dtype=[np.float64, np.float32]
        )
        mixture = self.mixture_model_.mixture_
        rows = torch.tensor(X_np, dtype=mixture.dtype, device=mixture.device)
        return mixture.conditionals(range(self.n_features_in_), rows), kind

    def _shaped(self, values: torch.Tensor, kind: OutputKind) -> Any:
        if self._single_target:
            values = values[..., 0]
        return as_output(values, kind)

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Conditional mean ``E[y | x]`` of every row.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Inputs with the features seen in :meth:`fit`.
        return_std : bool, default=False
            Also return the conditional standard deviation (per target), which includes
            the spread between the components' predictions (law of total variance).

        Returns
        -------
        y_mean : ndarray or Tensor of shape (n_samples,) or (n_samples, n_targets)
            The conditional means; a tensor for tensor input.
        y_std : ndarray or Tensor, same shape
            Only with ``return_std=True``.

        See Also
        --------
        GaussianMixtureRegressor.sample_y : Draws instead of moments.
        mixtorch.conditioning.Conditionals.mean

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixtureRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2))
        >>> y = X @ [2.0, -1.0] + 0.1 * rng.normal(size=500)
        >>> model = GaussianMixtureRegressor(random_state=0).fit(X, y)
        >>> model.predict([[1.0, 1.0]]).round(1)
        array([1.])
        """
        conditionals, kind = self._conditionals(X)
        mean = self._shaped(conditionals.mean(), kind)
        if not return_std:
            return mean
        return mean, self._shaped(conditionals.variance().clamp_min(0.0).sqrt(), kind)

    def sample_y(self, X: Any, n_samples: int = 1, random_state: Any = None) -> Any:
        """Draws from ``p(y | x)`` for every row of ``X``.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_rows, n_features)
            Inputs with the features seen in :meth:`fit`.
        n_samples : int, default=1
            Draws per row (positive).
        random_state : int, RandomState, Generator or torch.Generator, default=None
            Seed for these draws; None uses the estimator's ``random_state``.

        Returns
        -------
        y_samples : ndarray or Tensor
            Of shape (n_rows, n_samples) for a single target, (n_rows, n_targets,
            n_samples) otherwise (scikit-learn's GaussianProcessRegressor layout).

        Raises
        ------
        ValueError
            If ``n_samples`` is below 1.
        TypeError
            If ``n_samples`` is not an integer (Python or NumPy, or a 0-d integer array).

        See Also
        --------
        GaussianMixtureRegressor.predict : The mean and standard deviation.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixtureRegressor
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(300, 1))
        >>> model = GaussianMixtureRegressor(random_state=0).fit(x, 2 * x[:, 0])
        >>> model.sample_y([[0.0], [1.0]], n_samples=5, random_state=0).shape
        (2, 5)
        """
        conditionals, kind = self._conditionals(X)  # NotFittedError first, as sklearn's
        count = check_n_samples(n_samples)  # memory: checked by Conditionals.sample
        seed = self.random_state if random_state is None else random_state
        generator = check_random_generator(seed, self.mixture_model_.mixture_.device)
        draws = conditionals.sample(count, generator)  # (rows, draws, targets)
        draws = draws[..., 0] if self._single_target else draws.transpose(1, 2)
        return as_output(draws, kind)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _rounding_advice(joint: torch.Tensor, reg_covar: float) -> str | None:
    """The message for a joint covariance that could not be factored because
    ``reg_covar`` is below the rounding of ``joint``'s dtype at its largest variance
    (None when it is not: then the usual advice stands).

    A singular joint covariance (a target linear in the inputs, fewer rows than columns)
    is positive definite only through ``reg_covar``; once cast to the computation dtype its
    entries carry errors of about ``eps`` times the largest variance, which swamp a smaller
    ``reg_covar``. A ``reg_covar`` of that size was enough in every case measured."""
    variances = joint.to(torch.float64).var(dim=0, correction=0)
    largest = float(variances.max())
    rounding = torch.finfo(joint.dtype).eps * largest
    # Variances beyond the dtype's range overflowed: the error already says to rescale.
    if not reg_covar < rounding or not largest < torch.finfo(joint.dtype).max:
        return None
    suggested = 10.0 ** math.ceil(math.log10(rounding))
    dtype = str(joint.dtype).removeprefix("torch.")
    wider = ", fit in float64 (dtype='float64')" if joint.dtype != torch.float64 else ""
    return (
        f"The joint covariance of [X, y] is not positive definite in {dtype} with "
        f"reg_covar={reg_covar:g}: the columns of [X, y] are (nearly) linearly dependent "
        "(a target linear in the inputs, or fewer rows than columns), and only reg_covar "
        f"keeps such a covariance invertible, but {dtype} resolves the largest variance "
        f"({largest:.3g}, column {int(variances.argmax())}) only to about {rounding:.2g}. "
        f"Pass reg_covar={suggested:g} or more{wider}, or scale X and y (e.g. "
        "sklearn.preprocessing.StandardScaler)."
    )


def _holds_text(values: Any) -> bool:
    """Whether ``values`` hold strings or other objects (not an array of numbers)."""
    try:
        return np.asarray(values).dtype.kind in "OUS"
    except (TypeError, ValueError):  # ragged
        return False


def _device(requested: Any, X: Any) -> torch.device:
    given = X.device if isinstance(X, torch.Tensor) else torch.device("cpu")
    return check_device(requested) or given


def host_values(values: Any, name: str) -> Any:
    """A tensor as a NumPy array for scikit-learn's checks; anything else unchanged.

    A tensor on the 'meta' device holds no values: ValueError naming ``name``.
    """
    if not isinstance(values, torch.Tensor):
        return values
    refuse_meta(values, name)
    return values.detach().cpu().numpy()
