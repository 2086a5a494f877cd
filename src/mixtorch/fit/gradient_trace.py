"""The record of a gradient fit: per-epoch NLL and parameters, as a table or a plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["GradientTrace"]


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
    converged : bool
    n_rejected : int
        Steps undone because they produced a non-finite loss or parameter.
    seconds : float
    """

    iterations: list[int] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    parameters: list[dict[str, Tensor]] = field(default_factory=list)
    final_nll: float = math.nan
    n_iter: int = 0
    converged: bool = False
    n_rejected: int = 0
    seconds: float = 0.0

    @property
    def lower_bounds(self) -> list[float]:
        """Mean log-likelihood per epoch (scikit-learn's ``lower_bounds_``)."""
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
        max_rows : int
            The first and last epochs are always shown.
        max_values : int
            Parameter values shown per row (when snapshots were recorded).
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

        Returns the axes. Extra keyword arguments go to ``ax.plot``.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        ax.plot(self.iterations, self.nll, **{"label": "gradient", **kwargs})
        ax.set_xlabel("epoch")
        ax.set_ylabel("negative log-likelihood per sample")
        return ax


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
