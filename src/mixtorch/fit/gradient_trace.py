"""The record of a gradient fit: per-epoch NLL and parameters, as a table or a plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from .._plot_common import pyplot
from ..exceptions import DivergenceError

__all__ = ["GradientTrace", "check_divergence", "has_converged"]


@dataclass
class GradientTrace:
    """What happened during one gradient run.

    Attributes
    ----------
    iterations : list of int
        Epoch numbers, from 1.
    nll : list of float
        Mean negative log-likelihood per sample of each epoch (see the module notes).
    parameters : list of dict
        For small models, the parameters at the start of each epoch (``weights``,
        ``means``, ``covariances`` in scikit-learn's layout, CPU float64 tensors);
        empty otherwise.
    final_nll : float
        Mean NLL per sample of the returned parameters on all the data.
    n_iter : int
        Epochs run.
    converged : bool
        Whether the stopping rule was met before ``max_iter`` ran out.
    n_rejected : int
        Steps undone because they produced a non-finite loss or parameter.
    rejected : list of int
        Steps undone in each epoch.
    seconds : float
        Wall-clock time of the run.

    See Also
    --------
    mixtorch.fit.gradient.fit_gradient : The loop that fills it.
    mixtorch.fit.em.EMTrace : The record of an EM run.

    Examples
    --------
    >>> from mixtorch.fit.gradient import GradientTrace
    >>> trace = GradientTrace(iterations=[1, 2], nll=[1.5, 1.25], final_nll=1.2, n_iter=2)
    >>> trace.lower_bounds, trace.lower_bound
    ([-1.5, -1.25], -1.2)
    >>> print(trace.table())
    iteration             nll
    -------------------------
            1        1.500000
            2        1.250000
    final nll 1.200000 after 2 epochs (not converged)
    """

    iterations: list[int] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    parameters: list[dict[str, Tensor]] = field(default_factory=list)
    final_nll: float = math.nan
    n_iter: int = 0
    converged: bool = False
    n_rejected: int = 0
    rejected: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lower_bounds(self) -> list[float]:
        """Mean log-likelihood per epoch (scikit-learn's ``lower_bounds_``), ``-nll``."""
        return [-value for value in self.nll]

    @property
    def lower_bound(self) -> float:
        """Mean log-likelihood of the returned parameters."""
        if math.isfinite(self.final_nll):
            return -self.final_nll
        return -self.nll[-1] if self.nll else -math.inf

    def table(self, max_rows: int = 20, max_values: int = 6) -> str:
        """The history as a printable table (about ``max_rows`` evenly spaced rows).

        Parameters
        ----------
        max_rows : int, default=20
            The first and last epochs are always shown.
        max_values : int, default=6
            Parameter values shown per row (when snapshots were recorded).

        Returns
        -------
        str
            Epoch, NLL (and parameters) per row, then the final NLL.

        See Also
        --------
        GradientTrace.plot : The same history as a training curve.
        """
        if not self.nll:
            return "(no iterations)"
        header = f"{'iteration':>9}  {'nll':>14}"
        if self.parameters:
            header += "  parameters (weights, means, covariances)"
        lines = [header, "-" * len(header)]
        for index in _spread(len(self.nll), max_rows):
            line = f"{self.iterations[index]:>9d}  {self.nll[index]:>14.6f}"
            if self.parameters:
                line += "  " + _format_parameters(self.parameters[index], max_values)
            lines.append(line)
        lines.append(
            f"final nll {self.final_nll:.6f} after {self.n_iter} epochs"
            f" ({'converged' if self.converged else 'not converged'})"
        )
        return "\n".join(lines)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Training curve (NLL per sample against epoch) on a matplotlib axes.

        Without matplotlib it raises ImportError with the install hint that mixtorch's
        other plots give.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure's axes by default.
        **kwargs
            Passed to ``ax.plot``.

        Returns
        -------
        matplotlib Axes
            The axes drawn on.

        See Also
        --------
        GradientTrace.table : The same history as text.
        """
        plt = pyplot()  # checked first, so a missing matplotlib fails before any work
        if ax is None:
            _, ax = plt.subplots()
        ax.plot(self.iterations, self.nll, **{"label": "gradient", **kwargs})
        ax.set_xlabel("epoch")
        ax.set_ylabel("negative log-likelihood per sample")
        return ax


def has_converged(trace: GradientTrace, window: int, tol: float) -> bool:
    """The stopping rule of :func:`~mixtorch.fit.gradient.fit_gradient`.

    The last ``3 * window`` epochs are cut into three windows and the mean NLL of each is
    taken (averaging damps mini-batch noise). The run has converged when all of these hold:

    - no step was undone in the last two windows (an undone step leaves the NLL unchanged,
      which must not pass for convergence);
    - every epoch-to-epoch change in the last window is below ``tol`` (the NLL is stable,
      not oscillating around a level);
    - the decrease still to come, extrapolated from the last two window drops ``d1``
      (older) and ``d2`` as a geometric series ``d2 * r / (1 - r)`` with ``r = d2 / d1``,
      is below ``tol``. When ``d1`` or ``d2`` is not positive the NLL has stopped
      falling at the window scale and the remaining decrease is taken as
      ``max(d2, 0)``; when the drops do not shrink (``d2 >= d1 > 0``) it is infinite.

    A slow optimiser (plain SGD) whose NLL falls by less than ``tol`` per epoch but
    steadily is therefore not stopped early: a per-epoch test stopped it 0.01 to 0.02
    nats per sample short of the optimum.
    """
    nll = trace.nll
    if len(nll) < 3 * window or any(trace.rejected[-2 * window :]):
        return False
    recent = nll[-window - 1 :]
    if any(not math.isfinite(value) for value in recent):
        return False
    if max(abs(b - a) for a, b in zip(recent[:-1], recent[1:], strict=True)) >= tol:
        return False
    oldest, middle, last = (
        math.fsum(nll[len(nll) - (i + 1) * window : len(nll) - i * window]) / window
        for i in (2, 1, 0)
    )
    first_drop, second_drop = oldest - middle, middle - last
    if first_drop <= 0 or second_drop <= 0:
        remaining = max(second_drop, 0.0)
    elif second_drop < first_drop:
        ratio = second_drop / first_drop
        remaining = second_drop * ratio / (1.0 - ratio)
    else:
        remaining = math.inf
    return remaining < tol


def check_divergence(trace: GradientTrace, start_nll: float, used_adam: bool = False) -> None:
    """Raise :class:`~mixtorch.exceptions.DivergenceError` when the run ended with a
    non-finite NLL or more than ``max(1, 0.1 |start_nll|)`` nats per sample above the NLL
    of its starting parameters: the optimiser made the model worse than its start, which
    mini-batch noise alone does not do by that much. The advice names Adam only where
    another optimiser ran (``used_adam`` False)."""
    final = trace.final_nll
    allowance = max(1.0, 0.1 * abs(start_nll)) if math.isfinite(start_nll) else math.inf
    if math.isfinite(final) and not final > start_nll + allowance:
        return
    trace.converged = False
    raise DivergenceError(
        f"Gradient descent diverged: the negative log-likelihood per sample went from "
        f"{start_nll:.6g} at the start to {final:.6g} after {trace.n_iter} epochs "
        f"({trace.n_rejected} steps undone). Lower learning_rate"
        + ("." if used_adam else " (or use optimizer='adam').")
    )


def _format_parameters(snapshot: dict[str, Tensor], max_values: int) -> str:
    parts = []
    for name in ("weights", "means", "covariances"):
        values = snapshot[name].flatten()
        if name == "weights" and values.numel() == 1:
            continue
        shown = " ".join(f"{float(v):.4g}" for v in values[:max_values])
        more = " ..." if values.numel() > max_values else ""
        parts.append(f"{name}=[{shown}{more}]")
    return "  ".join(parts)


def _spread(length: int, max_rows: int) -> list[int]:
    """Up to ``max_rows`` evenly spaced indices into ``range(length)``, ends included."""
    if length <= max_rows:
        return list(range(length))
    step = (length - 1) / max(1, max_rows - 1)
    return sorted({round(i * step) for i in range(max_rows)})
