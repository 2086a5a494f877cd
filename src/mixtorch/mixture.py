"""The Gaussian mixture value object shared by every model in mixtorch.

A single Gaussian is a mixture with K = 1 and a Gaussian KDE is a mixture with one
component per data point, so densities, responsibilities and samples are computed here
once. The object holds tensors and does no fitting.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from . import _scoring
from ._chunks import chunk_rows
from ._mixture_checks import check_n_samples, checked_parameters
from .conditioning import Conditionals, as_rows, check_features, condition, marginal
from .covariance import Covariance
from .estep import EStepKernel

__all__ = ["SCORING_ELEMENTS", "Mixture"]

#: Largest (K, rows) block of log-probabilities per scoring chunk (512 KiB of float32):
#: 8192-row chunks for K=16. The diag E-step's chunks (43690 rows for K=D=16) are too
#: few on 200k rows to share out evenly to threads; scoring keeps no moments, so shorter
#: chunks cost nothing extra.
SCORING_ELEMENTS = 2**17


class Mixture:
    """A mixture of K Gaussians in D dimensions, ``p(x) = sum_k w_k N(x | mu_k, S_k)`` [1]_.

    A value object holding tensors: densities, responsibilities, samples, marginals and
    conditionals [2]_ [3]_; no fitting. Every estimator's ``mixture_`` is one.

    Parameters
    ----------
    weights : Tensor of shape (K,)
        Mixing proportions, non-negative, summing to one.
    means : Tensor of shape (K, D)
        Component means, in the dtype and on the device of the computation.
    covariance : Covariance
        One of :class:`~mixtorch.covariance.FullCovariance`, ``TiedCovariance``,
        ``DiagCovariance`` or ``SphericalCovariance``, for D features.

    Raises
    ------
    ValueError
        If the shapes of ``weights``, ``means`` and ``covariance`` do not agree.

    See Also
    --------
    mixtorch.GaussianMixture : The estimator that fits one by EM.
    torch.distributions.MixtureSameFamily : torch's counterpart (:meth:`to_torch`).

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2; marginals and conditionals of a Gaussian: section 2.3.
    .. [2] Z. Ghahramani and M. I. Jordan (1994), "Supervised learning from incomplete
       data via an EM approach", *NIPS 6*.
    .. [3] H. G. Sung (2004), "Gaussian mixture regression and classification", PhD
       thesis, Rice University.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import Mixture
    >>> mixture = Mixture.from_parameters(
    ...     [0.3, 0.7], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 1.0], [0.5, 0.5]],
    ...     covariance_type="diag", dtype=torch.float64,
    ... )
    >>> mixture.n_components, mixture.n_features, mixture.covariance_type
    (2, 2, 'diag')
    >>> X = torch.tensor([[0.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
    >>> mixture.responsibilities(X).round(decimals=3)
    tensor([[1., 0.],
            [0., 1.]], dtype=torch.float64)
    >>> torch.allclose(mixture.log_prob(X), mixture.to_torch().log_prob(X))
    True
    """

    def __init__(self, weights: Tensor, means: Tensor, covariance: Covariance) -> None:
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}.")
        if weights.shape != (means.shape[0],):
            raise ValueError(
                f"weights must have shape ({means.shape[0]},) to match means, "
                f"got {tuple(weights.shape)}."
            )
        if covariance.n_features != means.shape[1]:
            raise ValueError(
                f"The covariance is {covariance.n_features}-dimensional but the means are "
                f"{means.shape[1]}-dimensional."
            )
        self.weights = weights
        self.means = means
        self.covariance = covariance

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_parameters(
        cls,
        weights: Any,
        means: Any,
        covariances: Any,
        covariance_type: str = "full",
        *,
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> Mixture:
        """Build from array-likes in scikit-learn's layouts (see :mod:`.covariance`).

        Parameters
        ----------
        weights : array-like of shape (K,)
            Mixing proportions, non-negative, summing to one.
        means : array-like of shape (K, D)
            Component means; ``weights`` and ``covariances`` take their dtype and device.
        covariances : array-like
            (K, D, D) for 'full', (D, D) for 'tied', (K, D) for 'diag', (K,) for 'spherical'.
        covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
            Layout of ``covariances``.
        dtype : torch.dtype, default=None
            The dtype, float32 or float64; None keeps the dtype of ``means``.
        device : str or torch.device, default=None
            None keeps the device of ``means`` (CPU for NumPy).

        Returns
        -------
        Mixture
            The validated mixture.

        Raises
        ------
        ValueError
            Naming the parameter: NaN or infinite values, wrong shapes, weights negative or
            not summing to one, covariances not symmetric positive definite.
        TypeError
            For values that are not numeric arrays.

        See Also
        --------
        mixtorch.GaussianMixture.from_mixture : A fitted estimator holding a mixture.
        """
        return cls(*checked_parameters(weights, means, covariances, covariance_type, dtype, device))

    # -- basic properties ------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @property
    def covariance_type(self) -> str:
        return self.covariance.kind

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def device(self) -> torch.device:
        return self.means.device

    @cached_property
    def center(self) -> Tensor:
        """The mixture mean, used as the shift point for accurate float32 arithmetic."""
        return self.weights @ self.means

    @cached_property
    def centred_means(self) -> Tensor:
        """Means relative to :attr:`center`."""
        return self.means - self.center

    @cached_property
    def log_weights(self) -> Tensor:
        return torch.log(self.weights)

    @cached_property
    def e_step_kernel(self) -> EStepKernel:
        """This mixture's E-step, applied to chunks of rows (see :mod:`mixtorch.estep`)."""
        return self.covariance.e_step_kernel(self.center, self.centred_means, self.log_weights)

    def n_parameters(self) -> int:
        """Free parameters: weights (K - 1), means (K * D) and the covariance's own.

        Returns
        -------
        int
            The count the BIC and AIC use.

        See Also
        --------
        mixtorch.GaussianMixture.bic, mixtorch.GaussianMixture.aic
        """
        K, D = self.n_components, self.n_features
        return (K - 1) + K * D + self.covariance.n_parameters(K, D)

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> Mixture:
        """A copy on another device and/or dtype (None keeps the current one).

        Parameters
        ----------
        device : str or torch.device, default=None
            Target device.
        dtype : torch.dtype, default=None
            Target dtype.

        Returns
        -------
        Mixture
            The copy.

        See Also
        --------
        mixtorch.GaussianMixture.to : The same for a fitted estimator.
        """
        return Mixture(
            self.weights.to(device=device, dtype=dtype),
            self.means.to(device=device, dtype=dtype),
            self.covariance.to(device=device, dtype=dtype),
        )

    # -- densities -------------------------------------------------------------------
    def component_log_prob(self, X: Tensor) -> Tensor:
        """log N(x_i | mu_k, Sigma_k), shape (n, K), for one chunk ``X`` of shape (n, D).

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            One chunk of rows (no chunking is done here).

        Returns
        -------
        Tensor of shape (n_samples, K)
            Per-component log-densities, without the weights.

        See Also
        --------
        Mixture.weighted_log_prob, Mixture.log_prob
        """
        zeros = torch.zeros_like(self.weights)
        return self.covariance.log_gaussian(
            X.to(self.dtype) - self.center, self.centred_means, zeros
        )

    def weighted_log_prob(self, X: Tensor) -> Tensor:
        """log pi_k + log N(x_i | mu_k, Sigma_k), shape (n, K), for one chunk ``X``.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            One chunk of rows.

        Returns
        -------
        Tensor of shape (n_samples, K)
            Its ``logsumexp`` over components is :meth:`log_prob`.

        See Also
        --------
        Mixture.component_log_prob, Mixture.responsibilities
        """
        return self.e_step_kernel.weighted_log_prob(X.to(self.dtype))

    def _scoring_rows(self, chunk_size: int | None) -> int:
        """Rows per scoring chunk: the E-step's chunk, capped so that the (K, rows)
        log-probabilities hold at most :data:`SCORING_ELEMENTS` values.

        Diag chunks are long (about 43k rows for K=D=16), too few to share out evenly to
        threads; scoring needs no moments, so shorter chunks cost nothing extra. The
        rows depend only on K, D and ``chunk_size``, never on threads.
        """
        K, D = self.n_components, self.n_features
        rows = chunk_rows(K, D, chunk_size, type(self.covariance))
        return min(rows, max(256, SCORING_ELEMENTS // K))

    def log_prob(self, X: Tensor, chunk_size: int | None = None) -> Tensor:
        """log p(x_i), computed in row chunks (see :mod:`mixtorch._scoring`).

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            The points.
        chunk_size : int, default=None
            Rows per chunk, bounding memory; None picks it from K and D.

        Returns
        -------
        Tensor of shape (n_samples,)
            Log-densities; ``-inf`` only for points too far away for a finite density.

        See Also
        --------
        Mixture.total_log_prob, Mixture.responsibilities, Mixture.predict

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.float64)
        >>> mixture.log_prob(torch.zeros(1, 1, dtype=torch.float64))  # -log(2 pi) / 2
        tensor([-0.9189], dtype=torch.float64)
        """
        rows = self._scoring_rows(chunk_size)
        out, overflowed = _scoring.log_prob(self.e_step_kernel, X, rows, self.dtype)
        if overflowed:  # see _far_labels
            out[~torch.isfinite(out)] = -math.inf
        return out

    def total_log_prob(self, X: Tensor, chunk_size: int | None = None) -> Tensor:
        """sum_i log p(x_i) as a float64 scalar, without an (n,) intermediate.

        Parameters
        ----------
        X, chunk_size
            As for :meth:`log_prob`.

        Returns
        -------
        Tensor of shape ()
            The float64 sum of :meth:`log_prob`.

        See Also
        --------
        Mixture.log_prob, mixtorch.GaussianMixture.score
        """
        rows = self._scoring_rows(chunk_size)
        sums, overflowed = _scoring.log_likelihood_sums(self.e_step_kernel, X, rows, self.dtype)
        if overflowed:  # a row's log-density is -inf
            return self.log_prob(X, chunk_size).sum(dtype=torch.float64)
        return sums.sum()

    def responsibilities(self, X: Tensor, chunk_size: int | None = None) -> Tensor:
        """p(z_i = k | x_i), shape (n, K), computed in row chunks.

        Parameters
        ----------
        X, chunk_size
            As for :meth:`log_prob`.

        Returns
        -------
        Tensor of shape (n_samples, K)
            Rows sum to one (one-hot for points too far away for finite densities).

        See Also
        --------
        Mixture.predict, mixtorch.GaussianMixture.predict_proba
        """
        rows = self._scoring_rows(chunk_size)
        kernel = self.e_step_kernel
        out, peaks, overflowed = _scoring.responsibilities(
            kernel, X, rows, self.dtype, self.n_components
        )
        if overflowed:
            far = ~torch.isfinite(peaks)
            out[far] = torch.nn.functional.one_hot(self._far_labels(X[far]), self.n_components).to(
                out.dtype
            )
        return out

    def predict(self, X: Tensor, chunk_size: int | None = None) -> Tensor:
        """argmax_k p(z_i = k | x_i), shape (n,).

        Parameters
        ----------
        X, chunk_size
            As for :meth:`log_prob`.

        Returns
        -------
        Tensor of shape (n_samples,)
            The most probable component (int64), the first on ties.

        See Also
        --------
        Mixture.responsibilities, mixtorch.GaussianMixture.predict
        """
        rows = self._scoring_rows(chunk_size)
        labels, peaks, overflowed = _scoring.labels(self.e_step_kernel, X, rows, self.dtype)
        if overflowed:
            far = ~torch.isfinite(peaks)
            labels[far] = self._far_labels(X[far])
        return labels

    def _far_labels(self, X: Tensor) -> Tensor:
        """Most probable component of rows too far away for their terms to be finite.

        When squared coordinates overflow, every density underflows (log-density -inf),
        but the posterior has a limit along the ray through the point: the component
        with the smallest ``u^T S_k^-1 u`` (``u`` the direction from the centre) wins,
        ties going to the largest ``u^T S_k^-1 m_k``. Computed in float64 on the
        direction, which stays finite.
        """
        Y = X.to(torch.float64) - self.center.to(torch.float64)
        infinite = torch.isinf(Y)
        direction = torch.where(
            infinite.any(1, keepdim=True),
            torch.where(infinite, Y.sign(), 0.0),
            Y / Y.abs().amax(1, keepdim=True),
        )
        covariance = self.covariance.to(dtype=torch.float64)
        means = self.centred_means.to(torch.float64)
        origin = torch.zeros_like(direction[:1])
        spread = covariance.mahalanobis(direction, torch.zeros_like(means))  # (n, K)
        reach = (
            spread
            + covariance.mahalanobis(origin, means)
            - covariance.mahalanobis(direction, means)
        )
        smallest = spread <= spread.amin(1, keepdim=True) * (1.0 + 1e-9)
        return torch.where(smallest, reach, -math.inf).argmax(1)

    # -- generation ------------------------------------------------------------------
    def sample(
        self, n_samples: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n_samples`` points: z ~ Categorical(weights), then x ~ N(mu_z, Sigma_z).

        Parameters
        ----------
        n_samples : int
            Number of points, at least 1 (ValueError otherwise; TypeError if not an integer).
        generator : torch.Generator, default=None
            Source of randomness on the mixture's device; None uses torch's global one.

        Returns
        -------
        X : Tensor of shape (n_samples, n_features)
            The samples, grouped by component as scikit-learn does.
        labels : Tensor of shape (n_samples,)
            Their components, sorted.

        See Also
        --------
        mixtorch.GaussianMixture.sample, torch.distributions.MixtureSameFamily.sample

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([0.2, 0.8], [[0.0], [10.0]], [[[1.0]], [[1.0]]],
        ...                                   dtype=torch.float64)
        >>> X, labels = mixture.sample(1000, generator=torch.Generator().manual_seed(0))
        >>> X.shape, round(labels.double().mean().item(), 1)
        (torch.Size([1000, 1]), 0.8)
        """
        # Each draw: its row, a label, and the noise and sort buffers (about 2x each).
        itemsize = torch.finfo(self.dtype).bits // 8
        n_samples = check_n_samples(n_samples, 2 * (itemsize * self.n_features + 8), self.device)
        labels = (
            torch.multinomial(
                self.weights.to(torch.float64).cpu(),
                n_samples,
                replacement=True,
                generator=_cpu_generator(generator),
            )
            .sort()
            .values.to(self.device)
        )
        counts = torch.bincount(labels, minlength=self.n_components).tolist()
        blocks = []
        for component, count in enumerate(counts):
            if count == 0:
                continue
            noise = torch.randn(
                count, self.n_features, dtype=self.dtype, device=self.device, generator=generator
            )
            blocks.append(self.means[component] + self.covariance.scale_noise(noise, component))
        return torch.cat(blocks), labels

    # -- interoperability ------------------------------------------------------------
    def to_torch(self) -> torch.distributions.MixtureSameFamily:
        """The same mixture as a ``torch.distributions.MixtureSameFamily``.

        Returns
        -------
        torch.distributions.MixtureSameFamily
            ``MultivariateNormal`` components for 'full'/'tied', ``Independent(Normal, 1)``
            for 'diag'/'spherical'.

        See Also
        --------
        mixtorch.GaussianMixture.from_torch : The way back.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([0.5, 0.5], [[0.0], [2.0]], [[[1.0]], [[0.5]]],
        ...                                   dtype=torch.float64)
        >>> distribution = mixture.to_torch()
        >>> type(distribution).__name__
        'MixtureSameFamily'
        >>> x = torch.tensor([[0.5]], dtype=torch.float64)
        >>> torch.allclose(distribution.log_prob(x), mixture.log_prob(x))
        True
        """
        from torch.distributions import (
            Categorical,
            Independent,
            MixtureSameFamily,
            MultivariateNormal,
            Normal,
        )

        mixing = Categorical(probs=self.weights)
        components: torch.distributions.Distribution
        if self.covariance.is_triangular():
            scale_tril = self.covariance.cholesky.expand(self.n_components, -1, -1)
            components = MultivariateNormal(self.means, scale_tril=scale_tril)
        else:
            scale = self.covariance.cholesky
            scale = scale.expand(self.n_features, -1).T if scale.ndim == 1 else scale
            components = Independent(Normal(self.means, scale), 1)
        return MixtureSameFamily(mixing, components)

    # -- marginals and conditionals (see mixtorch.conditioning) ------------------------
    def marginal(self, features: Any) -> Mixture:
        """The mixture of the features ``features`` (indices, in that order) alone.

        Weights are kept; means and covariances are the blocks of those features, of the
        same covariance kind.

        Parameters
        ----------
        features : sequence of int
            Indices of the features to keep, no repeats (ValueError otherwise).

        Returns
        -------
        Mixture
            K components in ``len(features)`` dimensions.

        See Also
        --------
        Mixture.condition, mixtorch.conditioning.marginal

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 1.0, 2.0]], [[1.0, 2.0, 3.0]],
        ...                                   covariance_type="diag", dtype=torch.float64)
        >>> mixture.marginal([2, 0]).means
        tensor([[2., 0.]], dtype=torch.float64)
        """
        index = check_features(features, self.n_features)
        means, covariance = marginal(self.means, self.covariance, index)
        return Mixture(self.weights, means, covariance)

    def conditionals(self, features: Any, values: Any) -> Conditionals:
        """``p(x_rest | x[features] = v)`` for every row ``v`` of ``values``, batched.

        Parameters
        ----------
        features : sequence of int
            Indices of the observed features; the others (in increasing order) are free.
        values : array-like of shape (n_rows, len(features)) or (len(features),)
            Observed values, one row per conditional.

        Returns
        -------
        Conditionals
            Per-row log-weights (n_rows, K), per-row component means (n_rows, K, F) and the
            conditional covariance (the same for every row), with ``mean()``,
            ``variance()`` and ``sample()``.

        See Also
        --------
        Mixture.condition, mixtorch.GaussianMixtureRegressor

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.5, 1.0]]],
        ...                                   dtype=torch.float64)
        >>> mixture.conditionals([0], [[2.0], [-2.0]]).mean()
        tensor([[ 1.],
                [-1.]], dtype=torch.float64)
        """
        index = check_features(features, self.n_features, leave_one=True)
        rows = as_rows(values, index.numel(), self.dtype, self.device)
        return condition(self.log_weights, self.means, self.covariance, index, rows)

    def condition(self, features: Any, values: Any) -> Mixture:
        """The mixture of the other features given ``x[features] = values`` (one row).

        Component weights become ``w_k N(values | mu_k, S_k)`` (the marginal likelihood
        of ``values`` under component ``k``) renormalised; means and covariances are the
        Gaussian conditionals, of the same covariance kind.

        Parameters
        ----------
        features : sequence of int
            Indices of the observed features.
        values : array-like of shape (len(features),)
            Their values; more than one row raises ValueError (use :meth:`conditionals`).

        Returns
        -------
        Mixture
            K components over the remaining features, in increasing index order.

        See Also
        --------
        Mixture.conditionals, Mixture.marginal

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.5, 1.0]]],
        ...                                   dtype=torch.float64)
        >>> given = mixture.condition([0], [2.0])
        >>> given.means, given.covariance.covariances
        (tensor([[1.]], dtype=torch.float64), tensor([[[0.7500]]], dtype=torch.float64))
        """
        conditionals = self.conditionals(features, values)
        if conditionals.means.shape[0] != 1:
            raise ValueError("condition takes one row of values; use conditionals() for many rows.")
        weights = conditionals.log_weights[0].exp()
        return Mixture(weights / weights.sum(), conditionals.means[0], conditionals.covariance)

    def __repr__(self) -> str:
        return (
            f"Mixture(n_components={self.n_components}, n_features={self.n_features}, "
            f"covariance_type={self.covariance_type!r}, dtype={self.dtype}, device={self.device})"
        )


def _cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """torch.multinomial on the CPU needs a CPU generator; derive one deterministically."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(seed)
