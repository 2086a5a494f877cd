"""Restarts: :func:`best_of_n_init`, the one loop over ``n_init`` starts (or one warm
start) that keeps the run with the highest lower bound and warns when it did not
converge, and :class:`Progress`, which prints what ``verbose`` asks for and calls the
user's callback. Re-exported by :mod:`mixtorch._estimator`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sklearn.exceptions import ConvergenceWarning

from ._warnings import user_stacklevel


class FitRecord(Protocol):
    """What a fitter reports about one run (``EMTrace``, ``GradientTrace``, ...)."""

    @property
    def lower_bound(self) -> float: ...

    converged: bool


Start = TypeVar("Start")
Result = TypeVar("Result")
Record = TypeVar("Record", bound=FitRecord)


@dataclass
class Progress:
    """``verbose`` printing and the user's ``callback(iteration, lower_bound)``.

    Parameters
    ----------
    verbose : int
        0 silent; 1 one line per initialisation and every ``interval`` iterations; 2 adds
        the lower bound and its change.
    interval : int
    callback : callable, optional
    describe : callable, optional
        Extra text for an iteration line (e.g. rows and seconds of a pass over a source).
    label : str
        What an iteration is called in printed lines ("Iteration", "Pass").
    """

    verbose: int = 0
    interval: int = 10
    callback: Callable[[int, float], None] | None = None
    describe: Callable[[], str] | None = None
    label: str = "Iteration"

    def say(self, level: int, message: str) -> None:
        """Print ``message`` when ``verbose >= level``."""
        if self.verbose >= level:
            print(message)

    def iteration(self, iteration: int, lower_bound: float, change: float) -> None:
        """Report one iteration of a fitter (``callback`` argument of the fitters)."""
        if self.callback is not None:
            self.callback(iteration, lower_bound)
        if self.verbose and iteration % self.interval == 0:
            head = f"  {self.label} {iteration}"
            if self.describe is not None:
                head += f": {self.describe()}"
            detail = f"\t lower bound {lower_bound:.5f}\t change {change:.3g}"
            self.say(1, head + (detail if self.verbose >= 2 else ""))

    def epoch(self, epoch: int, nll: float) -> None:
        """Report one gradient epoch (mean NLL per sample)."""
        self.iteration(epoch, -nll, math.nan)

    @property
    def active(self) -> bool:
        """Whether anything listens (fitters skip the callback otherwise)."""
        return bool(self.verbose) or self.callback is not None


def best_of_n_init(
    start: Callable[[], Start],
    run: Callable[[Start, float], tuple[Result, Record]],
    *,
    n_init: int,
    warm: tuple[Start, float] | None = None,
    progress: Progress | None = None,
    max_iter: int = 1,
) -> tuple[Result, Record]:
    """Run a fitter from ``n_init`` starts (or once from ``warm``) and keep the best.

    Parameters
    ----------
    start : callable
        ``start()`` draws a fresh starting point (value object).
    run : callable
        ``run(start, previous_lower_bound)`` fits from it and returns (result, record);
        the record has ``lower_bound`` and ``converged``.
    n_init : int
    warm : (start, previous_lower_bound), optional
        Warm start: one run from the previous fit (``n_init`` is then ignored).
    progress : Progress, optional
    max_iter : int
        With ``max_iter == 0`` no run can converge, so nothing is said about it.

    Returns
    -------
    (result, record) of the run with the highest lower bound.
    """
    progress = progress or Progress()
    best: tuple[Result, Record] | None = None
    for init in range(1 if warm is not None else n_init):
        progress.say(1, f"Initialization {init}")
        begin, previous = warm if warm is not None else (start(), -math.inf)
        result = run(begin, previous)
        state = "converged" if result[1].converged else "did not converge"
        progress.say(1, f"Initialization {state}.")
        if best is None or result[1].lower_bound > best[1].lower_bound:
            best = result
    if best is None:
        raise ValueError(f"n_init must be at least 1, got {n_init!r}.")
    if not best[1].converged and max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge. Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    return best
