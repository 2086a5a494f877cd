"""Maximum likelihood by gradient descent, as a pure function on tensors.

The mixture is held by a :class:`~mixtorch.nn.GaussianMixtureModule` (unconstrained
parameters: softmax logits, log scales, Cholesky factors with a log diagonal) and the
mean negative log-likelihood per sample is minimised with any ``torch.optim`` optimiser,
full batch or in mini-batches. Gradients are accumulated over row chunks, so memory is
bounded by the chunk size whatever the batch size.

Stopping rule (:func:`~mixtorch.fit.gradient_trace.has_converged`): the epoch NLL per
sample is averaged over windows of ``patience`` epochs; the run has converged when the
NLL is stable within ``tol`` from epoch to epoch over the last window, no step was undone
recently, and the decrease still to come, extrapolated geometrically from the last two
window drops, is below ``tol``. So ``tol`` bounds the estimated distance of the NLL per
sample from its limit, the quantity scikit-learn's ``tol`` refers to; unlike a relative
change it does not depend on the units of the data. A per-epoch change test is not
enough for stochastic or slow optimisers: plain SGD changes the NLL by less than 1e-3 per
epoch long before it is within 1e-3 of the optimum. With mini-batches the epoch NLL is
the average of the batch losses, each taken before its own step; the window means damp
their noise, and a run whose NLL keeps moving by more than ``tol`` between epochs (noise
or oscillation) never counts as converged. No gradient-norm test is used: its scale
depends on the parametrisation and on the units of the data.

A run that ends with a non-finite NLL, or more than ``max(1, 0.1 |NLL_0|)`` nats per
sample above its starting NLL ``NLL_0``, has diverged: :class:`~mixtorch.exceptions.
DivergenceError` is raised (a ``ValueError``) asking for a lower learning rate, rather
than returning a model that is worse than its start.

A step that makes the loss or a parameter non-finite is undone: the parameters go back
to the last finite values, the learning rate is halved and the optimiser's state is
cleared. So a poor start (scales far too large or too small) slows the fit down but never
produces NaN.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from .._chunks import chunk_rows
from .._module import GaussianMixtureModule
from .._validation import integer, normalised_sample_weight, refuse_meta
from ..covariance import CovarianceError
from ..exceptions import DivergenceError
from ..mixture import Mixture
from ._gradient_steps import Stepper, full_nll
from .em import fixed_groups
from .gradient_trace import GradientTrace, check_divergence, has_converged

__all__ = [
    "OPTIMIZERS",
    "GradientTrace",
    "fit_gradient",
    "make_optimizer",
]

OptimizerSpec = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]

#: Optimiser names accepted by :func:`fit_gradient`.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "lbfgs": torch.optim.LBFGS,
}

#: Models with at most this many free parameters get a snapshot per iteration.
_SNAPSHOT_LIMIT = 64


#: Which parameter group each of the module's parameters belongs to (the rest: covariances).
_GROUPS = {"logits": "weights", "means": "means"}


def _freeze(module: torch.nn.Module, fixed: frozenset[str]) -> None:
    """Stop gradients for the parameter groups in ``fixed`` (they keep their values)."""
    for name, parameter in module.named_parameters():
        if _GROUPS.get(name, "covariances") in fixed:
            parameter.requires_grad_(False)


def fit_gradient(
    X: Tensor,
    initial: Mixture,
    *,
    optimizer: OptimizerSpec = "adam",
    learning_rate: float = 0.05,
    batch_size: int | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    patience: int = 10,
    generator: torch.Generator | None = None,
    reg_covar: float = 1e-6,
    sample_weight: Tensor | None = None,
    chunk_size: int | None = None,
    record_parameters: bool | None = None,
    callback: Callable[[int, float], None] | None = None,
    fixed: Iterable[str] = (),
) -> tuple[Mixture, GradientTrace]:
    """Minimise the mean negative log-likelihood from ``initial``.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data, in the dtype and on the device of the computation.
    initial : Mixture
        Starting parameters; its covariance type is kept (moved to ``X``'s device and
        dtype).
    optimizer : str, optimiser class or callable, default='adam'
        A name from :data:`OPTIMIZERS` in any case (``'adam'`` or ``'Adam'``), a
        ``torch.optim.Optimizer`` subclass, or a callable
        ``(params, lr=learning_rate) -> optimizer``.
    learning_rate : float, default=0.05
        Initial step size (halved each time a step is undone).
    batch_size : int, optional
        Rows per step; ``None`` is full batch (one step per epoch).
    max_iter : int, default=1000
        Maximum number of epochs.
    tol : float, default=1e-6
        Convergence threshold on the estimated distance of the NLL per sample from its
        limit (see the module notes).
    patience : int, default=10
        Window length in epochs of the stopping rule; a run takes at least
        ``3 * patience`` epochs to converge.
    generator : torch.Generator, optional
        Shuffles the rows for mini-batches (on ``X``'s device).
    reg_covar : float, default=1e-6
        Added to every covariance diagonal during and after the fit.
    sample_weight : Tensor of shape (n_samples,), optional
        Non-negative weights; the loss is the weighted mean NLL.
    chunk_size : int, optional
        Rows per forward/backward chunk (memory bound).
    record_parameters : bool, optional
        Snapshot parameters every epoch; by default only for models with at most 64
        free parameters.
    callback : callable, optional
        Called as ``callback(epoch, nll)`` after every epoch.
    fixed : iterable of {'weights', 'means', 'covariances'}
        Parameter groups that keep their values in ``initial`` (no gradient step).

    Returns
    -------
    mixture : Mixture
        The fitted mixture, with ``reg_covar`` on the covariance diagonals.
    trace : GradientTrace
        ``converged`` is False when ``max_iter`` epochs ran out first; callers warn.

    Raises
    ------
    ValueError
        If ``X`` does not have ``initial``'s number of features, has no rows or
        non-finite values, is not float32/float64 or is on the 'meta' device, an
        argument is out of range, ``fixed`` names an unknown group, or ``optimizer``
        builds an optimiser that leaves some of the parameters it was given out (the
        message names the argument).
    TypeError
        If ``X`` is not a tensor, ``initial`` not a :class:`~mixtorch.Mixture`, a
        number of the wrong kind is given (``max_iter=2.5``, ``learning_rate='0.1'``),
        ``generator`` is not a ``torch.Generator``, ``fixed`` is a string, or
        ``optimizer`` cannot be called as documented.
    DivergenceError
        When the run diverged (see the module notes); a ``ValueError``.

    See Also
    --------
    make_optimizer : How ``optimizer`` is turned into an optimiser.
    mixtorch.fit.em.fit_em : Maximum likelihood by EM.
    mixtorch.nn.GaussianMixtureModule : The unconstrained parametrisation.

    References
    ----------
    .. [1] D. P. Kingma and J. Ba (2015), "Adam: a method for stochastic optimization",
       *ICLR* (the default optimiser).

    Examples
    --------
    One Gaussian's maximum-likelihood estimates are the sample mean and the biased
    sample variance (``tol`` bounds the NLL gap, so parameters agree to about
    ``sigma * sqrt(2 * tol)``):

    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.gradient import fit_gradient
    >>> X = 2 + 3 * torch.randn(300, 1, generator=torch.Generator().manual_seed(0)).double()
    >>> start = Mixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.float64)
    >>> fitted, trace = fit_gradient(X, start, learning_rate=0.1, reg_covar=0.0)
    >>> trace.converged
    True
    >>> torch.allclose(fitted.means[0], X.mean(0), atol=0.01)
    True
    >>> torch.allclose(fitted.covariance.covariances[0], X.var(unbiased=False), rtol=0.01)
    True
    """
    _check_arguments(X, initial, learning_rate, batch_size, max_iter, tol, patience)
    _check_options(chunk_size, generator)
    learning_rate = float(learning_rate)  # a NumPy float32 would make torch step in float32
    groups = fixed_groups(fixed)
    started = time.perf_counter()
    module = GaussianMixtureModule.from_mixture(initial.to(X.device, X.dtype), reg_covar=reg_covar)
    module.validate_args = False  # X was checked once above; no host sync per chunk
    _freeze(module, groups)
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:  # everything fixed: nothing to optimise
        return initial.to(X.device, X.dtype), GradientTrace(converged=True)
    optim = make_optimizer(optimizer, parameters, learning_rate)
    weights = normalised_sample_weight(sample_weight, X)
    rows = chunk_rows(
        initial.n_components, initial.n_features, chunk_size, type(initial.covariance)
    )
    batch = X.shape[0] if batch_size is None else min(int(batch_size), X.shape[0])
    record = (
        initial.n_parameters() <= _SNAPSHOT_LIMIT
        if record_parameters is None
        else bool(record_parameters)
    )

    trace = GradientTrace()
    stepper = Stepper(module, optim, rows, trace)
    start_nll = full_nll(module, X, weights, rows) if max_iter > 0 else math.nan
    for epoch in range(1, max_iter + 1):
        if record:
            trace.parameters.append(_snapshot(module, trace))
        rejected_before = trace.n_rejected
        nll = stepper.epoch(X, weights, batch, generator)
        trace.iterations.append(epoch)
        trace.nll.append(nll)
        trace.rejected.append(trace.n_rejected - rejected_before)
        trace.n_iter = epoch
        if callback is not None:
            callback(epoch, nll)
        if has_converged(trace, int(patience), tol):
            trace.converged = True
            break
    trace.final_nll = full_nll(module, X, weights, rows)
    trace.seconds = time.perf_counter() - started
    check_divergence(trace, start_nll, used_adam=isinstance(optim, torch.optim.Adam))
    return _mixture_of(module, trace), trace


def make_optimizer(
    spec: OptimizerSpec, parameters: Iterable[Tensor], learning_rate: float
) -> torch.optim.Optimizer:
    """Build an optimiser from a name, an optimiser class or a factory callable.

    Parameters
    ----------
    spec : str, optimiser class or callable
        A name from :data:`OPTIMIZERS` (case-insensitive), or anything called as
        ``spec(params, lr=learning_rate)`` that returns a ``torch.optim.Optimizer``.
    parameters : iterable of Tensor
        The parameters to optimise.
    learning_rate : float
        Passed as ``lr``.

    Returns
    -------
    torch.optim.Optimizer
        The optimiser over ``parameters``.

    Raises
    ------
    ValueError
        If ``spec`` is a name not in :data:`OPTIMIZERS`, or builds an optimiser that
        leaves out some of ``parameters`` (one built on other tensors would return the
        starting point as if it were fitted).
    TypeError
        If ``spec`` is neither a name nor callable (an optimiser instance: pass its
        class or a ``functools.partial``), cannot be called as
        ``spec(params, lr=learning_rate)``, or builds something else.

    See Also
    --------
    fit_gradient : Its ``optimizer`` argument.

    Examples
    --------
    >>> import functools
    >>> import torch
    >>> from mixtorch.fit.gradient import make_optimizer
    >>> weight = torch.zeros(3, requires_grad=True)
    >>> make_optimizer("Adam", [weight], 0.1).defaults["lr"]
    0.1
    >>> momentum = functools.partial(torch.optim.SGD, momentum=0.9)
    >>> make_optimizer(momentum, [weight], 0.01).defaults["momentum"]
    0.9
    """
    params = list(parameters)
    if isinstance(spec, str):
        key = spec.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {spec!r}.")
        factory: Callable[..., torch.optim.Optimizer] = OPTIMIZERS[key]
        return factory(params, lr=learning_rate)
    if isinstance(spec, torch.optim.Optimizer):
        raise TypeError(
            "optimizer must be a name, a torch.optim.Optimizer class or a callable, got an "
            f"optimiser instance ({type(spec).__name__}), which holds other parameters; pass "
            f"its class (torch.optim.{type(spec).__name__}) or a functools.partial of it."
        )
    if callable(spec):
        build: Callable[..., Any] = spec
        try:
            built = build(params, lr=learning_rate)
        except TypeError as error:
            raise TypeError(
                "optimizer is called as optimizer(params, lr=learning_rate) and failed: "
                f"{error}. Give a torch.optim.Optimizer class or a callable taking those "
                "arguments (e.g. lambda params, lr: torch.optim.SGD(params, lr=lr))."
            ) from error
        if not isinstance(built, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must build a torch.optim.Optimizer, it built {type(built).__name__}."
            )
        _check_optimised(built, params)
        return built
    raise TypeError(
        "optimizer must be a name, a torch.optim.Optimizer class or a callable, "
        f"got {type(spec).__name__}."
    )


def _check_optimised(optim: torch.optim.Optimizer, params: list[Any]) -> None:
    """ValueError unless ``optim`` updates every tensor of ``params``."""
    held = {id(p) for group in optim.param_groups for p in group["params"]}
    given = [p for item in params for p in (item["params"] if isinstance(item, dict) else [item])]
    missing = sum(id(p) not in held for p in given)
    if missing:
        raise ValueError(
            f"optimizer built an optimiser that leaves {missing} of the {len(given)} "
            "parameters it was given out (built on other tensors?), so the fit would not "
            "move them; build it on the params it is called with, as in "
            "lambda params, lr: torch.optim.SGD(params, lr=lr). To hold parameter groups "
            "at their starting values, use fixed=... instead."
        )


# -- helpers ----------------------------------------------------------------------------
def _mixture_of(module: GaussianMixtureModule, trace: GradientTrace) -> Mixture:
    """The module's mixture; a covariance that no longer factors (finite parameters of
    absurd scale after huge steps) means the run diverged."""
    try:
        return module.to_mixture()
    except CovarianceError as error:
        raise DivergenceError(
            f"Gradient descent diverged after {trace.n_iter} epochs: {error.args[0].split('. ')[0]}"
            ". Lower learning_rate (or use optimizer='adam')."
        ) from error


def _snapshot(module: GaussianMixtureModule, trace: GradientTrace) -> dict[str, Tensor]:
    mixture = _mixture_of(module, trace)
    return {
        "weights": mixture.weights.to("cpu", torch.float64),
        "means": mixture.means.to("cpu", torch.float64),
        "covariances": mixture.covariance.covariances.to("cpu", torch.float64),
    }


def _check_arguments(
    X: Tensor,
    initial: Mixture,
    learning_rate: float,
    batch_size: int | None,
    max_iter: int,
    tol: float,
    patience: int,
) -> None:
    if not isinstance(initial, Mixture):
        raise TypeError(
            "initial must be a mixtorch.Mixture (e.g. Mixture.from_parameters(...)), got "
            f"{type(initial).__name__}."
        )
    if not isinstance(X, Tensor):
        raise TypeError(
            f"X must be a torch.Tensor, got {type(X).__name__}; convert it with "
            "torch.as_tensor(X), or fit GaussianMixture(algorithm='gradient'), which takes "
            "arrays."
        )
    refuse_meta(X, "X")
    if X.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"X must be float32 or float64, got {X.dtype}; convert it (X.double() or X.float())."
        )
    if X.ndim != 2 or X.shape[1] != initial.n_features:
        raise ValueError(
            f"X must have shape (n_samples, {initial.n_features}), got {tuple(X.shape)}."
        )
    if X.shape[0] < 1 or not bool(torch.isfinite(X).all()):
        raise ValueError("X must have at least one row and contain only finite values.")
    _check_real("learning_rate", learning_rate, minimum=0.0, inclusive=False)
    if batch_size is not None:
        _check_integer("batch_size", batch_size, 1, " or None")
    _check_integer("max_iter", max_iter, 0)
    _check_integer("patience", patience, 1)
    _check_real("tol", tol, minimum=0.0, inclusive=True)


def _check_options(chunk_size: int | None, generator: Any) -> None:
    if chunk_size is not None:
        _check_integer("chunk_size", chunk_size, 1, " or None")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}."
        )


def _check_integer(name: str, value: Any, minimum: int, alternative: str = "") -> None:
    """TypeError for a value that is not an integer (bools and 2.5 included, see
    :func:`~mixtorch._validation.integer`), ValueError below ``minimum``."""
    if integer(value, name) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{alternative}, got {value!r}.")


def _check_real(name: str, value: Any, *, minimum: float, inclusive: bool) -> None:
    """TypeError for a value that is not a real number (bools included), ValueError for
    NaN, infinity or a value below ``minimum`` (or equal to it unless ``inclusive``)."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a finite number {bound}, got {value!r} ({type(value).__name__})."
        )
    number = float(value)
    in_range = number >= minimum if inclusive else number > minimum
    if not (math.isfinite(number) and in_range):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
