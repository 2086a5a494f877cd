"""The classmethods that code above the covariance value objects asks a kind: layout,
shape checks, identity start, chunk cost and the mapping to single-Gaussian values
(:class:`_KindOperations`, a base of :class:`~mixtorch.covariance.Covariance`)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor


class _KindOperations:
    """What code above the value objects asks a covariance type (classmethods only): its
    layout and shape checks, an identity start, the per-row cost of a chunk, and how its
    values map to a single Gaussian. Kept apart from :class:`Covariance`
    so that nothing else dispatches on the kind's name."""

    kind: ClassVar[str]

    @classmethod
    def is_triangular(cls) -> bool:
        """Whether the covariances are full matrices (factored by Cholesky).

        Returns
        -------
        bool
            True for 'full' and 'tied', False for 'diag' and 'spherical'.

        See Also
        --------
        mixtorch.covariance.Covariance.layout
        """
        return cls.kind in ("full", "tied")

    @classmethod
    def layout(cls, n_components: int, n_features: int) -> tuple[int, ...]:
        """The shape of this kind's covariances (and precisions), scikit-learn's layout.

        Parameters
        ----------
        n_components : int
            K.
        n_features : int
            D.

        Returns
        -------
        tuple of int
            (K, D, D) 'full', (D, D) 'tied', (K, D) 'diag', (K,) 'spherical'.

        See Also
        --------
        mixtorch.covariance.Covariance.check_layout

        Examples
        --------
        >>> from mixtorch import TiedCovariance
        >>> TiedCovariance.layout(3, 2)
        (2, 2)
        """
        K, D = n_components, n_features
        return {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[cls.kind]

    @classmethod
    def check_layout(cls, values: Tensor, n_components: int, n_features: int, what: str) -> None:
        """Raise a ValueError naming ``what`` unless ``values`` has this layout and is finite.

        Parameters
        ----------
        values : Tensor
            Covariances or precisions to check.
        n_components : int
            K.
        n_features : int
            D.
        what : str
            The parameter's name, for the message (e.g. ``'precisions_init'``).

        Raises
        ------
        ValueError
            For a wrong shape or NaN/infinite values.

        See Also
        --------
        mixtorch.covariance.Covariance.layout
        """
        expected = cls.layout(n_components, n_features)
        if tuple(values.shape) != expected:
            raise ValueError(
                f"'{cls.kind}' {what} must have shape {expected} for {n_components} "
                f"components in {n_features} dimensions, got {tuple(values.shape)}."
            )
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"{what} must be finite; they contain NaN or infinity.")

    @classmethod
    def identity_values(
        cls, n_components: int, n_features: int, dtype: torch.dtype, device: Any
    ) -> Tensor:
        """Unit covariances in this kind's layout.

        Parameters
        ----------
        n_components : int
            K.
        n_features : int
            D.
        dtype : torch.dtype
            The dtype of the result.
        device : str or torch.device
            Device of the result.

        Returns
        -------
        Tensor
            Identity matrices (full, tied) or ones (diag, spherical), shape :meth:`layout`.

        See Also
        --------
        mixtorch.covariance.Covariance.layout
        """
        shape = cls.layout(n_components, n_features)
        if cls.is_triangular():
            return torch.eye(n_features, dtype=dtype, device=device).expand(shape).clone()
        return torch.ones(shape, dtype=dtype, device=device)

    @classmethod
    def row_cost(cls, n_components: int, n_features: int) -> float:
        """Elements per data row of the largest per-chunk intermediate (sets chunk rows).

        Parameters
        ----------
        n_components : int
            K.
        n_features : int
            D.

        Returns
        -------
        float
            Memory cost per row, in tensor elements.

        See Also
        --------
        mixtorch.covariance.Covariance.layout
        """
        K, D = max(n_components, 1), max(n_features, 1)
        if cls.is_triangular():
            # The quadratic-form E-step holds a (D(D+3)/2, rows) block and (K, rows)
            # log-probabilities; the difference E-step works through a chunk in
            # cache-sized pieces of its own (mixtorch.estep).
            return (D * (D + 3) // 2 + K) / 2.0
        return (K + 2 * D) / 4.0

    @classmethod
    def add_reg_covar(cls, values: Tensor, reg_covar: float) -> Tensor:
        """``values`` with ``reg_covar`` added to every variance.

        The one place where the regularisation enters a covariance.

        Parameters
        ----------
        values : Tensor
            Covariances in this kind's layout.
        reg_covar : float
            Non-negative amount added to the diagonal.

        Returns
        -------
        Tensor
            Same layout.

        See Also
        --------
        mixtorch.covariance.Covariance.from_scatter
        """
        if cls.is_triangular():
            eye = torch.eye(values.shape[-1], dtype=values.dtype, device=values.device)
            return values + reg_covar * eye
        return values + reg_covar

    @classmethod
    def component_values(cls, values: Tensor, index: int) -> Tensor:
        """Component ``index``'s entry of ``values`` in this layout (tied: the one matrix).

        Parameters
        ----------
        values : Tensor
            Covariances or precisions in this kind's layout.
        index : int
            The component.

        Returns
        -------
        Tensor
            (D, D) for full/tied, (D,) for diag, a 0-d tensor for spherical.

        See Also
        --------
        mixtorch.covariance.Covariance.full_matrices
        """
        return values if cls.kind == "tied" else values[index]

    @classmethod
    def per_feature(cls, values: Tensor, n_features: int) -> Tensor:
        """(K, D) per-feature values from a diagonal kind's layout ((K, D) or (K,)).

        Parameters
        ----------
        values : Tensor
            Variances (or their logs) of shape (K, D) or (K,).
        n_features : int
            D.

        Returns
        -------
        Tensor of shape (K, D)
            ``values`` for 'diag', broadcast over features for 'spherical'.

        See Also
        --------
        mixtorch.covariance.Covariance.full_matrices
        """
        return values[:, None].expand(-1, n_features) if cls.kind == "spherical" else values
