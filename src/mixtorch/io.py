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

import os
from pathlib import Path
from typing import Any

from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from ._codec import Writer, class_name, decode, encode, is_mixtorch_module
from ._formats import FORMATS, REGISTERED, RebuildFn, StateFn, generic_format
from ._load_checks import _check_consistent
from ._model_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    check_writable,
    read_model_file,
    write_model_file,
)
from ._model_path import _as_path, _DirectoryNotModelFile, _warn_misleading_suffix
from ._validation import check_device
from ._version import __version__
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .impute import GaussianMixtureImputer
from .kde import GaussianKDE
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
