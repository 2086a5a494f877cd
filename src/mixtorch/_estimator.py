"""The skeleton every mixtorch estimator shares.

- **Parameters** are declared, scikit-learn's way, in ``_parameter_constraints`` and
  checked at ``fit`` by :meth:`~sklearn.base.BaseEstimator._validate_params`, which raises
  :class:`~sklearn.utils._param_validation.InvalidParameterError` (a ``ValueError`` and a
  ``TypeError``) naming the parameter. :data:`MIXTURE_CONSTRAINTS` mirrors
  ``sklearn.mixture``'s shared ones (the shared constraints live in
  :mod:`mixtorch._constraints`).
- **Restarts**: :func:`best_of_n_init` is the one loop over ``n_init`` starts (or one warm
  start) that keeps the run with the highest lower bound and warns with a
  ``ConvergenceWarning`` when it did not converge; :class:`Progress` prints what
  ``verbose`` asks for and calls the user's progress callback (both in
  :mod:`mixtorch._restarts`).
- **Fitted state**: an estimator is built from a fitted value object with
  :meth:`MixtureEstimator.from_mixture` (or filled with :meth:`~MixtureEstimator.set_fitted`),
  given the :class:`~mixtorch.Mixture`, the fit record (an ``EMTrace``,
  ``GradientTrace``, ...) and how results are handed back (:class:`OutputKind`). ``io``,
  ``nn``, ``selection`` and the CLI use only these public entry points.
- **Failed fits**: :func:`keeps_state_on_failure` wraps every ``fit`` so that one that
  raises leaves the estimator as it was (fitted or not), never with the new input's
  ``n_features_in_`` or ``feature_names_in_`` beside the old parameters.
- **Devices**: :meth:`DeviceMixin.to` moves or casts a fitted model in place, as
  ``torch.nn.Module.to`` does; estimators refill their fitted state through
  ``_set_fitted``, as :meth:`~MixtureEstimator.set_fitted` does but without checking the
  hyper-parameters, which ``set_params`` may have changed since the fit (``GaussianKDE``
  overrides the ``_move`` hook).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from typing import Any, ClassVar, TypeVar

import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._constraints import CHUNK_SIZE, MIXTURE_CONSTRAINTS, OPTIMIZER, RANDOM_STATE
from ._constraints import AnyCaseOptions as AnyCaseOptions  # re-exported: imported from here
from ._constraints import mixture_constraints as mixture_constraints  # re-exported, as above
from ._restarts import Progress, best_of_n_init
from ._restored import agree
from ._validation import OutputKind, check_device, resolve_dtype
from .covariance import Covariance
from .mixture import Mixture

__all__ = [
    "CHUNK_SIZE",
    "DeviceMixin",
    "MIXTURE_CONSTRAINTS",
    "MixtureEstimator",
    "OPTIMIZER",
    "Progress",
    "RANDOM_STATE",
    "best_of_n_init",
    "keeps_state_on_failure",
]

Method = TypeVar("Method", bound=Callable[..., Any])


def keeps_state_on_failure(method: Method) -> Method:
    """Make a ``fit``-like method all or nothing: if it raises, the estimator's
    attributes are put back as they were before the call.

    Validation records the new input's ``n_features_in_`` and ``feature_names_in_`` (or
    deletes them) before the checks that come later (too few samples for
    ``n_components``, NaN, a covariance that cannot be factored), and some fits store
    data before choosing a bandwidth; a refit that failed would otherwise leave the
    previous parameters beside the new input's features. The snapshot is shallow:
    fits replace fitted values rather than changing them in place.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:  # KeyboardInterrupt too: the fit did not happen
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    return wrapper  # type: ignore[return-value]


class DeviceMixin:
    """``to(device, dtype)`` for fitted estimators, as ``torch.nn.Module.to`` has it.

    Subclasses implement ``_move(device, dtype, output)``, which puts every fitted tensor
    on ``device`` (None: where it is) in ``dtype`` (None: as it is) and hands results back
    as ``output`` says.
    """

    _fit_kind: OutputKind

    def to(self, device: Any = None, dtype: Any = None) -> Any:
        """Move the fitted model to ``device`` and/or cast it to ``dtype``, in place.

        Like :meth:`torch.nn.Module.to`, the estimator itself is changed and returned.
        Later results are computed there; a model fitted on tensors hands back tensors
        on the new device, one fitted on NumPy arrays keeps handing back NumPy arrays.
        The constructor parameters (``device``, ``dtype``) are not changed, so a new
        ``fit`` follows them again.

        Parameters
        ----------
        device : str, int or torch.device, optional
            Where to compute from now on; None keeps the current device.
        dtype : torch.float32 or torch.float64 (or their names), optional
            Parameter dtype; None keeps the current one.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a device that does not exist on this machine or a dtype other than
            float32 and float64.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from mixtorch import GaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> model = GaussianMixture(2, random_state=0).fit(X)
        >>> model.to("cpu", torch.float32).mixture_.dtype
        torch.float32
        >>> model.score_samples(X[:2]).shape
        (2,)
        """
        check_is_fitted(self)
        target = check_device(device)
        cast = None if dtype is None else resolve_dtype(dtype, None)
        current = self._fit_kind
        output = OutputKind(True, target) if current.is_tensor and target is not None else current
        self._move(target, cast, output)
        return self

    def _move(
        self, device: torch.device | None, dtype: torch.dtype | None, output: OutputKind
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot be moved.")


def moved(value: Any, device: torch.device | None, dtype: torch.dtype | None) -> Any:
    """``value`` with its floating tensors on ``device`` in ``dtype``: tensors, covariances,
    tuples and dataclasses of them (other values are returned as they are)."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype if value.is_floating_point() else None)
    if isinstance(value, Covariance):
        return value.to(device=device, dtype=dtype)
    if isinstance(value, tuple):
        return tuple(moved(item, device, dtype) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: moved(getattr(value, f.name), device, dtype) for f in fields(value)}
        return replace(value, **changes)
    return value


class MixtureEstimator(DeviceMixin, BaseEstimator):
    """Base of every mixtorch estimator: constraints and the fitted-state protocol.

    Subclasses declare ``_parameter_constraints``, call ``self._validate_params()`` first
    in ``fit`` and implement :meth:`_set_fitted`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}
    _fit_kind: OutputKind

    # -- fitted-state protocol -------------------------------------------------------
    @classmethod
    def from_mixture(
        cls,
        mixture: Mixture,
        record: Any = None,
        *,
        output: OutputKind | None = None,
        **params: Any,
    ) -> Any:
        """A fitted estimator holding ``mixture``.

        Parameters
        ----------
        mixture : Mixture
            The fitted parameters (their dtype and device are the model's).
        record : fit record, optional
            What the fit reported (``EMTrace``, ``GradientTrace``, ...); an empty record
            by default.
        output : OutputKind, optional
            How results are handed back; NumPy by default.
        **params
            Constructor parameters; those the mixture determines (``n_components``,
            ``covariance_type``) are taken from it, and may be given only with the
            mixture's values.

        Returns
        -------
        estimator
            A fitted instance of ``cls``: scoring, prediction, sampling and
            :func:`mixtorch.save` work on it as after ``fit``.

        Raises
        ------
        ValueError
            If ``params`` contradict the mixture (e.g. ``n_components=5`` for a mixture of
            two components), which would describe another model than the one held.

        See Also
        --------
        set_fitted : The same on an existing estimator.
        mixtorch.Mixture.from_parameters : Build the mixture from arrays.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import GaussianMixture, Mixture
        >>> mixture = Mixture.from_parameters(
        ...     [0.5, 0.5], [[0.0], [4.0]], [[[1.0]], [[1.0]]], dtype=torch.float64)
        >>> model = GaussianMixture.from_mixture(mixture, random_state=0)
        >>> model.n_components, model.predict([[3.5]]).tolist()
        (2, [1])
        """
        determined = cls._params_of(mixture)
        for name, value in determined.items():
            if name in params and params[name] != value:
                raise ValueError(
                    f"{name}={params[name]!r} contradicts the mixture's {name}={value!r}; "
                    "leave it out (the estimator takes the mixture's)."
                )
        model = cls(**{**determined, **params})
        model.set_fitted(mixture, record, output=output)
        return model

    def set_fitted(
        self, mixture: Mixture, record: Any = None, *, output: OutputKind | None = None
    ) -> None:
        """Make this estimator fitted with ``mixture`` (see :meth:`from_mixture`).

        Parameters
        ----------
        mixture : Mixture
            The parameters to hold; fitted attributes (``weights_``, ``means_``, ...)
            are derived from it.
        record : fit record, optional
            What a fit reported (``EMTrace``, ...); an empty record by default.
        output : OutputKind, optional
            How results are handed back; NumPy by default.

        Raises
        ------
        ValueError
            If the estimator's parameters contradict the mixture (e.g.
            ``GaussianMixture(n_components=3)`` given a mixture of two components), as
            :meth:`from_mixture` refuses them: ``set_params`` them first, or use
            :meth:`from_mixture`, which takes them from the mixture.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Gaussian, Mixture
        >>> model = Gaussian()
        >>> model.set_fitted(Mixture.from_parameters(
        ...     [1.0], [[1.0, 2.0]], [[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64))
        >>> model.mean_.tolist()
        [1.0, 2.0]
        """
        # Refused rather than adopted: the hyper-parameters are the user's (set_fitted
        # does not write them back, as fit does not), and held beside a mixture they
        # contradict, they would describe another model (n_components=3, two weights_).
        current = self.get_params(deep=False)
        wanted = {
            name: value
            for name, value in self._params_of(mixture).items()
            if current[name] != value
        }
        if wanted:
            held = ", ".join(f"{name}={current[name]!r}" for name in wanted)
            given = ", ".join(f"{name}={value!r}" for name, value in wanted.items())
            verb = "contradicts" if len(wanted) == 1 else "contradict"
            raise ValueError(
                f"{held} {verb} the mixture's {given}; set_params({given}) first, or "
                f"build the estimator with {type(self).__name__}.from_mixture(mixture), which "
                "takes them from the mixture."
            )
        self._set_fitted(mixture, record, output if output is not None else OutputKind(False))

    @property
    def output_kind(self) -> OutputKind:
        """How results are handed back (NumPy, or tensors on a device); set by ``fit``."""
        return self._fit_kind

    @output_kind.setter
    def output_kind(self, kind: OutputKind) -> None:
        self._fit_kind = kind

    @classmethod
    def _params_of(cls, mixture: Mixture) -> dict[str, Any]:
        """Constructor parameters a mixture determines."""
        return {}

    def _fit_record(self) -> Any:
        """The record :meth:`set_fitted` was given (rebuilt from the fitted attributes)."""
        return None

    def _move(
        self, device: torch.device | None, dtype: torch.dtype | None, output: OutputKind
    ) -> None:
        moved_record = moved(self._fit_record(), device, dtype)
        online_state = self.__dict__.get("stepwise_state_")  # set_fitted starts online EM afresh
        # the same model elsewhere: hyper-parameters set_params changed since the fit stay
        self._set_fitted(self.mixture_.to(device, dtype), moved_record, output)
        if online_state is not None:
            # device only: the accumulators keep the precision online EM gave them
            self.stepwise_state_ = moved(online_state, device, None)

    def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot be built from a mixture.")

    def _after_load(self) -> None:
        """Called by :func:`mixtorch.load` once an estimator saved attribute by attribute
        (e.g. :class:`~mixtorch.BayesianGaussianMixture`) has its fitted attributes back.

        The attributes that :meth:`_set_fitted` derives from the mixture and the fit
        record (``weights_``, ``degrees_of_freedom_``, ``precisions_``, ...) are derived
        again, on the device loaded to, and replace the stored ones; a stored copy that
        differs by more than rounding means an edited file (a ``ValueError``).
        Precisions are not compared: inverting a nearly singular covariance in float32
        on another device may move them by more than that.
        """
        if type(self)._set_fitted is MixtureEstimator._set_fitted:
            return
        twin = copy.copy(self)  # a shallow copy: _set_fitted sets the twin's attributes
        twin._set_fitted(self.mixture_, self._fit_record(), self._fit_kind)
        stored, derived = vars(self), vars(twin)
        for name, value in derived.items():
            if name in stored and stored[name] is not value and "precisions" not in name:
                if not agree(stored[name], value, 1e-3):
                    raise ValueError(
                        f"the stored {name} is not what the rest of the fitted state gives "
                        "(an edited file)"
                    )
        self.__dict__.update(derived)
