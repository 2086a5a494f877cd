"""Model files: ``save(model, path)`` and ``load(path)``, never pickle.

A model file is one safetensors file. The tensors hold every array of the fitted model;
safetensors' string metadata carries a JSON document with the class, its
hyper-parameters (``get_params``), the fitted scalars, how results are handed back
(NumPy or tensors), the format version, the mixtorch version and a SHA-256 digest of
the tensor bytes and the rest of the document. Loading never runs code from the file and
never imports a module it names: the class is looked up in an explicit registry
(mixtorch's estimators, see :data:`ESTIMATORS`, and classes passed to
:func:`register_estimator`), dtypes and value
types in allow-lists. Every loaded model is validated as ``from_parameters`` validates
(finite non-negative weights summing to one, finite means, positive-definite
covariances, shapes that agree with each other and with the hyper-parameters, fitted
attributes of the types a fit gives and, where an estimator keeps copies of its
parameters beside ``mixture_``, copies equal to them), and the tensor bytes must match the
stored digest; any failure is a ``ValueError`` naming the file.

Estimators holding a ``mixture_`` (:class:`~mixtorch.GaussianMixture`,
:class:`~mixtorch.Gaussian`) are saved as their mixture parameters and rebuilt through
their public ``set_fitted``; :class:`~mixtorch.GaussianMixtureRegressor` and
:class:`~mixtorch.GaussianMixtureImputer` as their fitted joint ``GaussianMixture`` plus
their own fitted attributes; any other estimator is saved generically: every attribute
that ``fit`` set (fitted ``name_`` and private ``_name``) goes to the file, tensors and
arrays as tensors, mixtures, covariances and mixtorch dataclasses field by field, the rest
as JSON; it is restored with ``setattr`` followed by the class's ``_after_load()`` hook if
it has one. The formats live in :mod:`mixtorch._formats`.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from ._codec import Writer, class_name, decode, encode, is_mixtorch_module
from ._formats import FORMATS, REGISTERED, RebuildFn, StateFn, generic_format
from ._model_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    check_writable,
    read_model_file,
    write_model_file,
)
from ._restored import close_to
from ._validation import check_device
from ._version import __version__
from ._warnings import user_stacklevel
from .bayesian_mixture import BayesianGaussianMixture
from .fit.variational import VariationalPosterior
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .impute import GaussianMixtureImputer
from .kde import GaussianKDE
from .mixture import Mixture
from .regression import GaussianMixtureRegressor

__all__ = [
    "ESTIMATORS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "check_writable",
    "load",
    "register_estimator",
    "save",
]

#: mixtorch's estimator classes a file may name (by class name; the module part of the
#: tag must be in mixtorch). The Pyro-based ones need pyro and are resolved on demand.
ESTIMATORS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        GaussianMixture,
        Gaussian,
        GaussianKDE,
        BayesianGaussianMixture,
        GaussianMixtureRegressor,
        GaussianMixtureImputer,
    )
}
_PYRO_ESTIMATORS = ("SVIGaussianMixture", "MCMCGaussianMixture")


def register_estimator(
    cls: type, state: StateFn | None = None, rebuild: RebuildFn | None = None
) -> type:
    """Allow ``load`` to rebuild ``cls`` (needed for classes outside the mixtorch package).

    Parameters
    ----------
    cls : type
        A scikit-learn style estimator class; registered under its qualified name.
    state : callable, default=None
        ``state(model, writer) -> dict`` for a custom format (with ``rebuild``); None
        uses the generic one (fitted attributes ending in ``_``).
    rebuild : callable, default=None
        ``rebuild(model, state, tensors, device)``, the inverse of ``state``.

    Returns
    -------
    type
        ``cls`` itself, so the function can be used as a class decorator.

    See Also
    --------
    ESTIMATORS : The classes registered by mixtorch itself.
    save, load

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import mixtorch
    >>> from mixtorch.io import register_estimator
    >>> @register_estimator
    ... class CentredGaussian(mixtorch.Gaussian):
    ...     pass
    ...
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> model = CentredGaussian().fit(X - X.mean(0))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     again = mixtorch.load(mixtorch.save(model, Path(folder) / "model.mixtorch"))
    ...
    >>> type(again).__name__
    'CentredGaussian'
    """
    REGISTERED[class_name(cls)] = cls
    if state is not None and rebuild is not None:
        FORMATS[cls] = (state, rebuild)
    return cls


# -- public API ----------------------------------------------------------------------
def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to ``path`` (a safetensors file; ``.mixtorch`` or
    ``.safetensors`` are good suffixes).

    The file is written next to its destination and moved into place, so an existing
    file is replaced only by a complete model.

    Parameters
    ----------
    model : estimator
        A fitted mixtorch estimator (or one registered with :func:`register_estimator`).
    path : str or path-like
        Destination file; its folder must exist. An existing file is replaced.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    OSError
        If ``path`` cannot be written (missing folder, a folder, a name ending with a
        separator, an empty path, no permission, ...); the message names the path.
    TypeError
        If ``model`` is not an estimator, or ``path`` is not a str or path-like (a bytes
        path: decode it with ``os.fsdecode``).
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted (a ``ValueError``).

    Warns
    -----
    UserWarning
        If the name ends like another format (``.pkl``, ``.joblib``, ``.pt``, ``.npy``,
        ``.json``, ...): the file is a safetensors model file all the same, never a
        pickle, and only :func:`load` reads it.

    See Also
    --------
    load : Read it back.
    torch.save : Pickle-based; a mixtorch file never unpickles anything.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import mixtorch
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> model = mixtorch.GaussianMixture(2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = mixtorch.save(model, Path(folder) / "model.mixtorch")
    ...     print(path.name)
    ...     again = mixtorch.load(path)
    ...
    model.mixtorch
    >>> np.array_equal(again.score_samples(X), model.score_samples(X))
    True
    """
    if not hasattr(model, "get_params"):
        raise TypeError(f"save expects a scikit-learn style estimator, got {type(model)!r}.")
    if not _loadable(class_name(type(model))):
        raise TypeError(
            f"cannot save a {class_name(type(model))}: load() reads mixtorch's estimators and "
            "classes registered with mixtorch.io.register_estimator; register this class "
            "first (with a state format if its fitted state is not plain attributes)."
        )
    message = f"This {type(model).__name__} is not fitted yet; fit it before saving."
    if not any(name.endswith("_") and not name.startswith("_") for name in vars(model)):
        raise NotFittedError(message)
    try:  # the estimator's own test (__sklearn_is_fitted__) where it has one
        check_is_fitted(model)
    except NotFittedError:
        raise NotFittedError(message) from None
    writer = Writer({}, [])
    params = encode(model.get_params(deep=False), "params", writer, False)
    state_fn = FORMATS.get(type(model), generic_format())[0]
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "mixtorch_version": __version__,
        "class": class_name(type(model)),
        "params": params,
        "state": state_fn(model, writer),
        "dropped_params": writer.dropped,
    }
    path = _as_path(path)
    _warn_misleading_suffix(path)
    write_model_file(writer.tensors, document, path)
    return path


def load(path: str | os.PathLike[str], *, device: Any = None) -> Any:
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str or torch.device, default=None
        Where to put the parameters; by default the CPU. A model fitted on tensors hands
        back tensors on this device (so a GPU model loads anywhere; pass
        ``device="cuda"`` to put it back on the GPU); a NumPy-fitted one hands back NumPy.

    Returns
    -------
    estimator
        Predicts, scores and samples exactly as the saved model did.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory (also a ``FileNotFoundError``, as it was before).
    TypeError
        If ``path`` is not a str or path-like.
    ValueError
        If the file is truncated, corrupted (its tensors or document do not match the
        stored SHA-256), a pickle, not a mixtorch model, names a class outside the
        registry, holds invalid parameters (NaN or negative weights, weights not summing
        to one, covariances that are not positive definite, inconsistent shapes,
        hyper-parameters outside their constraints, fitted attributes that contradict the
        mixture or are of the wrong type), or was written by a newer format version. The
        message names the file.

    See Also
    --------
    save : Write one.
    register_estimator : Let ``load`` rebuild classes outside mixtorch.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import mixtorch
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = mixtorch.save(mixtorch.Gaussian().fit(X), Path(folder) / "g.mixtorch")
    ...     model = mixtorch.load(path)
    ...
    >>> type(model).__name__, model.n_features_in_
    ('Gaussian', 2)
    >>> np.allclose(model.mean_, X.mean(0))
    True
    """
    device = check_device(device)
    path = _as_path(path)
    if path.is_dir():
        raise _DirectoryNotModelFile(
            f"{path} is a directory, not a model file; give the path of a file written by "
            "mixtorch.save."
        )
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    document, tensors = read_model_file(path)
    cls = _resolve_class(document.get("class"), path)
    try:
        params = decode(document.get("params", {}), tensors)
        model = cls(**params)
        # The class's declared scikit-learn constraints (data, not a method of the model),
        # for every parameter the file holds: those `save` could not write (a callable
        # bandwidth, an optimizer class) come back as None, which is what the model has.
        constraints = getattr(cls, "_parameter_constraints", None)
        dropped = {str(key).split(".")[1] for key in document.get("dropped_params") or []}
        if isinstance(constraints, dict):
            held = {k: v for k, v in model.get_params(deep=False).items() if k not in dropped}
            validate_parameter_constraints(constraints, held, caller_name=cls.__name__)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
        raise ValueError(
            f"{path}: cannot rebuild {cls.__name__} from its parameters: {error}"
        ) from error
    rebuild = FORMATS.get(cls, generic_format())[1]
    try:
        rebuild(model, document["state"], tensors, device)
        _check_consistent(model)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as error:
        raise ValueError(f"{path}: the model file is invalid or inconsistent ({error}).") from error
    return model


class _DirectoryNotModelFile(IsADirectoryError, FileNotFoundError):
    """A directory given to :func:`load`: an ``IsADirectoryError``, and the
    ``FileNotFoundError`` that ``load`` raised for it before."""


def _as_path(path: Any) -> Path:
    """``path`` as a Path; TypeError naming the parameter for anything but str/PathLike,
    FileNotFoundError for an empty path (``Path("")`` would be the current folder) and
    IsADirectoryError for a name ending with a separator (``Path`` would drop it)."""
    if isinstance(path, bytes):
        raise TypeError(
            "path must be a str or os.PathLike, got bytes; decode it first, e.g. os.fsdecode(path)."
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    text = os.fspath(path)
    if not isinstance(text, str):  # a PathLike whose __fspath__ gives bytes
        raise TypeError(
            "path must be a str or os.PathLike of str, got a path of bytes; decode it "
            "first, e.g. os.fsdecode(path)."
        )
    if not text:
        raise FileNotFoundError("path is empty; give the name of a model file.")
    separators = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if text.endswith(separators) and not Path(text).is_file():
        raise _DirectoryNotModelFile(
            f"{text} names a folder (it ends with {text[-1]!r}), not a model file; give a "
            f"file name, e.g. {os.path.join(text, 'model.mixtorch')}."
        )
    return Path(text)


#: Endings that promise another format (a pickle, NumPy, JSON): whoever opens such a
#: file with that format's reader would fail or, for a pickle, be told to unpickle.
_MISLEADING_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".json"}
)


def _warn_misleading_suffix(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in _MISLEADING_SUFFIXES:
        warnings.warn(
            f"{path}: mixtorch.save writes a safetensors model file whatever the name, "
            f"not a {suffix} file (and never a pickle); only mixtorch.load reads it back. "
            f"Name it {path.with_suffix('.mixtorch').name} to say what it is.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _check_consistent(model: Any) -> None:
    """Shapes agree with each other and with the hyper-parameters."""
    inner = getattr(model, "mixture_model_", None)
    if inner is not None:  # a regressor or imputer: its joint mixture, then the columns
        if not isinstance(inner, GaussianMixture):
            raise TypeError(f"mixture_model_ is a {type(inner).__name__}, not a GaussianMixture")
        _check_consistent(inner)
        expected = model.__mixtorch_joint_features__()  # the class says what its mixture covers
        if inner.n_features_in_ != expected:
            raise ValueError(
                f"the mixture has {inner.n_features_in_} features but the model expects {expected}"
            )
    mixture = getattr(model, "mixture_", None)
    if mixture is None:
        return
    if not isinstance(mixture, Mixture):
        raise TypeError(f"mixture_ is a {type(mixture).__name__}, not a Mixture")
    n_features = getattr(model, "n_features_in_", mixture.n_features)
    if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral):
        raise ValueError(f"n_features_in_ must be an integer, got {n_features!r}")
    if int(n_features) != mixture.n_features:
        raise ValueError(
            f"n_features_in_ is {n_features} but the parameters have {mixture.n_features} features"
        )
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        if not isinstance(names, np.ndarray) or names.ndim != 1:
            raise ValueError(f"feature_names_in_ must be a 1-D array, got {type(names).__name__}")
        if not all(isinstance(name, str) for name in names.tolist()):
            raise ValueError("feature_names_in_ must hold strings (column names)")
        if len(names) != mixture.n_features:
            raise ValueError(f"{len(names)} feature names for {mixture.n_features} features")
    _check_copies(model, mixture)
    _check_scores_finite(model, mixture)
    if isinstance(model, (GaussianMixture, Gaussian)):
        expected = getattr(model, "n_components", 1)
        if mixture.n_components != expected:
            raise ValueError(
                f"n_components is {expected} but the parameters have "
                f"{mixture.n_components} components"
            )
        if mixture.covariance_type != getattr(model, "covariance_type", "full"):
            raise ValueError(
                f"covariance_type is {model.covariance_type!r} but the parameters are "
                f"{mixture.covariance_type!r}"
            )


#: Fitted attributes that some estimators keep beside ``mixture_`` as copies of its
#: parameters (a BayesianGaussianMixture's ``weights_``, a GaussianKDE's ``_data`` and
#: ``bandwidth_``): a file must not hand back copies that differ from what it scores with.
_COPIES: dict[str, Any] = {
    "weights_": lambda mixture: mixture.weights,
    "_weights": lambda mixture: mixture.weights,
    "means_": lambda mixture: mixture.means,
    "_data": lambda mixture: mixture.means,
    "covariances_": lambda mixture: mixture.covariance.covariances,
    "bandwidth_": lambda mixture: mixture.covariance.covariances,
    "_bandwidth_matrix": lambda mixture: mixture.covariance.covariances,
}


def _check_copies(model: Any, mixture: Mixture) -> None:
    """Stored copies of the mixture's parameters (and a variational posterior's point
    estimates) agree with the mixture; a KDE's counts and exact density agree with its
    kernels."""
    stored = vars(model)
    expected = {name: of(mixture) for name, of in _COPIES.items() if name in stored}
    given = {name: stored[name] for name in expected}
    posterior = stored.get("_posterior")
    if isinstance(posterior, VariationalPosterior):  # the mixture is its point estimate
        point = posterior.mixture()
        for name, of in (
            ("weights", "weights_"),
            ("means", "means_"),
            ("covariances", "covariances_"),
        ):
            expected[f"posterior {name}"] = _COPIES[of](mixture)
            given[f"posterior {name}"] = _COPIES[of](point)
    for name, reference in expected.items():
        if not close_to(given[name], reference):
            raise ValueError(
                f"the stored {name} does not match the mixture the model scores with "
                "(an edited file)"
            )
    if isinstance(model, GaussianKDE):
        count = stored.get("n_samples_fit_")
        if count != mixture.n_components or isinstance(count, bool):
            raise ValueError(
                f"n_samples_fit_ is {count!r} but the model holds {mixture.n_components} points"
            )
        factor = stored.get("factor_")
        number = isinstance(factor, (int, float)) and not isinstance(factor, bool)
        if not (number and math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor_ must be a positive number, got {factor!r}")
        if model.algorithm != "fft":  # the exact density is the mixture's
            probe = mixture.means[int(torch.argmax(mixture.weights))][None]
            density = torch.as_tensor(model.score_samples(probe), device=probe.device)
            if not close_to(density, _kernel_log_density(mixture, probe), tolerance=1e-3):
                raise ValueError(
                    "the stored kernel sums do not give the density of the stored data and "
                    "bandwidth (an edited file)"
                )


def _kernel_log_density(mixture: Mixture, probe: torch.Tensor) -> torch.Tensor:
    """log of a KDE's density at one point ``probe`` (1, D), summed directly over its
    kernels (one shared covariance): ``mixture.log_prob`` would build and keep the
    mixture's E-step kernel, twice the data's memory on the loaded model."""
    factor = mixture.covariance.cholesky
    differences = (mixture.means - probe).T  # (D, N)
    squared = torch.linalg.solve_triangular(factor, differences, upper=False).square().sum(0)
    log_det = 2.0 * torch.log(torch.diagonal(factor)).sum()
    constant = 0.5 * (probe.shape[1] * math.log(2.0 * math.pi) + log_det)
    return (torch.logsumexp(torch.log(mixture.weights) - 0.5 * squared, 0) - constant)[None]


def _check_scores_finite(model: Any, mixture: Mixture) -> None:
    """Whatever else the model keeps (a KDE's data, a grid, posterior draws), it must
    give a finite density at the mean of its heaviest component."""
    if not callable(getattr(model, "score_samples", None)):
        return
    probe = mixture.means[int(torch.argmax(mixture.weights))][None]
    value = torch.as_tensor(model.score_samples(probe))
    if not bool(torch.isfinite(value).all()):
        raise ValueError(
            f"the loaded model's log-density at its own heaviest component is {value.item()}: "
            "its stored state is inconsistent"
        )


def _loadable(name: str) -> bool:
    """Whether :func:`load` would find the class a file names (see _resolve_class)."""
    module, _, qualname = name.partition(":")
    return name in REGISTERED or (
        is_mixtorch_module(module) and (qualname in ESTIMATORS or qualname in _PYRO_ESTIMATORS)
    )


def _resolve_class(name: Any, path: Path) -> type:
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"{path}: the model file does not name a class ({name!r}).")
    if name in REGISTERED:
        return REGISTERED[name]
    module, _, qualname = name.partition(":")
    if not is_mixtorch_module(module):
        raise ValueError(
            f"{path} holds a {name}, which is not a mixtorch estimator; register it with "
            "mixtorch.io.register_estimator before loading."
        )
    if qualname in ESTIMATORS:
        return ESTIMATORS[qualname]
    if qualname in _PYRO_ESTIMATORS:
        return _pyro_estimator(qualname, path)
    raise ValueError(
        f"{path} names {name}, which is not one of mixtorch's estimators "
        f"({', '.join([*ESTIMATORS, *_PYRO_ESTIMATORS])})."
    )


def _pyro_estimator(name: str, path: Path) -> type:
    try:
        # A fixed module of this package, imported on demand because it needs pyro.
        from . import bayes
    except ImportError as error:
        raise ValueError(f"{path} holds a {name}, which needs pyro: {error}") from error
    cls: type = getattr(bayes, name)
    return cls
