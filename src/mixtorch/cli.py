"""The ``mixtorch`` command: fit, score, predict, impute, sample, plot, select and inspect
models from the shell.

Exit codes: 0 success, 2 a usage or user error (bad arguments, unreadable data, a file
that is not a model, an output that cannot be written, a device that is not there, ...;
printed as one ``mixtorch: error: ...`` line), 1 an unexpected failure (printed with its
traceback), 130 interrupted. A failing command prints that one line alone on stderr:
notes report work once it is done. Column names read from CSV headers and Parquet go
into the model (``feature_names_in_``) and out again as output headers and plot labels.

Heavy modules (NumPy, PyTorch, the estimators) are imported by the commands that need
them, so ``mixtorch --help`` answers quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from ._cli_args import build_parser

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# -- progress ------------------------------------------------------------------------
class Progress:
    """A tqdm progress bar on stderr, drawn only when enabled and (so that logs stay
    clean) only on a terminal.

    Called as ``progress(done, total, row)`` it tracks a sweep of known length; its
    :meth:`iteration` method tracks EM iterations, whose number is not known in advance,
    so that bar counts without a total (it never jumps to an end on convergence) and
    shows the elapsed time and the current log-likelihood.

    Used as a context manager, it keeps a finished bar on the screen and erases one
    whose work failed, so that the error is the one line a failure leaves on stderr.
    """

    def __init__(self, label: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.label = label
        self._bar: Any = None
        self._start = 0

    def _open(self, total: int | None, unit: str) -> Any:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=self.label, file=self.stream, unit=unit, dynamic_ncols=True
            )
        return self._bar

    def __call__(self, done: int, total: int, row: dict[str, Any] | None = None) -> None:
        if not self.enabled:
            return
        bar = self._open(total, "fit")
        if row:
            bar.set_postfix_str(f"K={row['n_components']} {row['covariance_type']}", False)
        bar.update(done - bar.n)
        if done >= total:
            self.close()

    def iteration(self, iteration: int, log_likelihood: float) -> None:
        """One EM iteration done (``iteration`` restarts at 1 for every initialisation)."""
        if not self.enabled:
            return
        bar = self._open(None, "it")
        if iteration == 1 and bar.n:
            self._start += 1
        start = f"init {self._start + 1}, " if self._start else ""
        bar.set_postfix_str(f"{start}log-likelihood {float(log_likelihood):.6g}", False)
        bar.update(1)

    def close(self, keep: bool = True) -> None:
        """Finish the bar; ``keep=False`` erases it from the terminal."""
        if self._bar is not None:
            self._bar.leave = keep
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(keep=kind is None)


class Console:
    """Where messages go: results on stdout, notes on stderr unless --quiet.

    Commands note what they did once it is done, never what they are about to do: a
    command that fails leaves its error alone on stderr (progress bars, drawn only on a
    terminal, show the work while it runs).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = bool(getattr(args, "quiet", False))
        self.progress = not self.quiet and not getattr(args, "no_progress", False)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)

    def bar(self, label: str) -> Progress:
        return Progress(label, self.progress)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits 0 on --help and 2 on usage errors
        return int(stop.code or 0)
    console = Console(args)
    # Imported after parsing: --help and usage errors must not wait for NumPy and PyTorch.
    from ._cli_commands import COMMANDS, UserError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # The command line passes plain arrays to models that know their columns'
            # names; it matches columns by name itself (see _cli_commands.model_input).
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            COMMANDS[args.command](args, console)
    except BrokenPipeError:  # e.g. `mixtorch predict ... | head`: the reader left
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("mixtorch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, ValueError, TypeError, OSError, ImportError, MemoryError) as error:
        print(f"mixtorch: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print("mixtorch: unexpected error (a bug; please report it)", file=sys.stderr)
        return EXIT_FAILURE
    for warning in caught:
        if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue  # about library internals, not about the user's data
        console.note(f"mixtorch: warning: {_one_line(warning.message)}")
    return EXIT_OK


def _silence_stdout() -> None:
    # Python would otherwise complain again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())


if __name__ == "__main__":
    sys.exit(main())
