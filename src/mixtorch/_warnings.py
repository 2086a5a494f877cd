"""Warnings that point at the user's line.

``warnings.warn`` attributes a warning to the frame ``stacklevel`` levels up; a fixed
level is wrong as soon as the same warning is reached through calls of different depths
(``fit`` and ``fit_predict``, EM and gradient fits, a CLI command). :func:`user_stacklevel`
counts the frames from the warning's call site to the first one outside mixtorch (and
outside scikit-learn, whose decorators wrap ``fit``), so the report names the caller's
file and line.
"""

from __future__ import annotations

import os
import sys

import sklearn

__all__ = ["user_stacklevel"]

_SKIPPED = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep,
)


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made by the caller of this function
    that attributes the warning to the first frame outside mixtorch and scikit-learn.

    Examples
    --------
    >>> user_stacklevel()  # called from outside mixtorch: the caller itself
    1
    """
    frame = sys._getframe(1)  # the function about to warn: stacklevel 1
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _SKIPPED
    ):
        frame = frame.f_back
        level += 1
    return level
