"""Conversions of :class:`~mixtorch._module.GaussianMixtureModule` (a base of it) to and
from a :class:`~mixtorch.Mixture`, and the check of a ``state_dict`` before it is loaded:
no NaN or infinite parameters."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ._module_parameters import log_scale, raw_cholesky
from .mixture import Mixture

if TYPE_CHECKING:
    from ._module import GaussianMixtureModule


class ModuleConversionMixin(nn.Module):
    """``to_mixture``, ``from_mixture`` and the ``state_dict`` check for
    :class:`~mixtorch._module.GaussianMixtureModule`."""

    if TYPE_CHECKING:  # provided by GaussianMixtureModule
        means: Tensor
        logits: Tensor
        _structure: Any

        @property
        def n_features(self) -> int: ...

        def _linalg_dtype(self) -> torch.dtype: ...

        def covariances(self) -> Tensor: ...

        @classmethod
        def _blank(cls, mixture: Mixture, reg_covar: float) -> GaussianMixtureModule: ...

    # -- conversion ------------------------------------------------------------------
    def to_mixture(self) -> Mixture:
        """The current parameters as a (detached) :class:`~mixtorch.Mixture`.

        Returns
        -------
        Mixture
            Weights, means and covariances (``reg_covar`` included), detached copies, in
            the module's dtype, or in float32 for a float16 or bfloat16 module (a
            :class:`~mixtorch.Mixture` computes in float32 or float64).

        Raises
        ------
        ValueError
            If the parameters hold NaN or infinity, or the module is on the 'meta'
            device (shapes without values).

        See Also
        --------
        GaussianMixtureModule.from_mixture : The way back.
        GaussianMixtureModule.to_torch : A differentiable distribution instead.
        """
        self._check_materialised("to_mixture")
        dtype = self._linalg_dtype()
        with torch.no_grad():
            weights = torch.softmax(self.logits.to(dtype), 0).detach().clone()
            covariances = self.covariances().to(dtype).detach().clone()
            means = self.means.to(dtype).detach().clone()
            values = (weights, means, covariances)
            if not all(bool(torch.isfinite(value).all()) for value in values):
                raise ValueError(
                    "The module's parameters hold NaN or infinity (the training diverged), so "
                    "they are not a mixture; restart from finite parameters, e.g. with a "
                    "smaller learning rate or a positive reg_covar."
                )
            covariance = self._structure(covariances, n_features=self.n_features)
            return Mixture(weights, means, covariance)

    def _check_materialised(self, method: str) -> None:
        """ValueError naming ``method`` for a module on the 'meta' device."""
        if self.means.device.type == "meta":
            raise ValueError(
                f"{method} needs parameter values, but the module is on the 'meta' device, "
                "which holds shapes only; materialise it first, e.g. "
                "module.to_empty(device='cpu') followed by module.load_state_dict(...)."
            )

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        """Refuse NaN or infinite parameters before ``load_state_dict`` copies them: every
        density of the module would be NaN. A logit of ``-inf`` (a component switched
        off, weight 0) is allowed while some logit is finite."""
        for name in ("logits", "means", "raw_cholesky", "log_scale"):
            value = state_dict.get(prefix + name)
            if (
                not isinstance(value, Tensor)
                or value.device.type == "meta"
                or not value.is_floating_point()
            ):
                continue
            finite = torch.isfinite(value)
            if name == "logits":
                valid = bool((finite | (value == -math.inf)).all() and finite.any())
            else:
                valid = bool(finite.all())
            if not valid:
                raise ValueError(
                    f"state_dict entry {prefix + name!r} holds NaN or infinity (saved from a "
                    "diverged training?); load a checkpoint with finite values (logits may "
                    "be -inf for components switched off)."
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_mixture(cls, mixture: Mixture, *, reg_covar: float = 0.0) -> GaussianMixtureModule:
        """A module holding ``mixture``'s parameters (same dtype and device).

        Parameters
        ----------
        mixture : Mixture
            The parameters to hold (its number of components, features and covariance type).
        reg_covar : float, default=0.0
            The module's ``reg_covar``. It is subtracted from the covariance diagonals before
            they are stored, so that the module's covariances equal the mixture's; where the
            difference would not be positive definite the covariance is stored as is.

        Returns
        -------
        GaussianMixtureModule
            A module whose :meth:`to_mixture` gives ``mixture`` back.

        See Also
        --------
        GaussianMixtureModule.to_mixture, GaussianMixtureModule.from_estimator
        """
        module = cls._blank(mixture, reg_covar)
        with torch.no_grad():
            tiny = torch.finfo(mixture.dtype).tiny
            module.logits.copy_(torch.log(mixture.weights.clamp_min(tiny)))
            module.means.copy_(mixture.means)
            covariances = mixture.covariance.covariances
            if module._structure.is_triangular():
                module.raw_cholesky.copy_(raw_cholesky(covariances, float(reg_covar)))
            else:
                module.log_scale.copy_(log_scale(covariances, float(reg_covar)))
        return module
