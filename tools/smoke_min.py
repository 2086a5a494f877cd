"""``make test-min``'s smoke test: run in ``.venv-min`` (the oldest declared versions).

Checks that the installed versions are the declared minimums, then imports mixtorch and
fits, scores, saves and loads each estimator on small data, reads and writes Parquet,
draws a plot and runs the command line.
"""

from __future__ import annotations

import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from min_requirements import minimum_pins  # noqa: E402


def check_versions(extras: list[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    for pin in minimum_pins(root / "pyproject.toml", extras):
        name, wanted = pin.split("==")
        have = version(name)
        if _release(have) != _release(wanted):
            raise SystemExit(f"{name} {have} installed, but the declared minimum is {wanted}")
        print(f"  {name} {have} (declared minimum {wanted})")


def _release(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in text.split("+")[0].split(".")[:3] if part.isdigit()]
    return tuple(parts + [0] * (3 - len(parts)))


def smoke(folder: Path) -> None:
    import mixtorch
    from mixtorch.cli import main

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 5])
    for model in (
        mixtorch.GaussianMixture(2, random_state=0),
        mixtorch.Gaussian(),
        mixtorch.GaussianKDE(),
        mixtorch.BayesianGaussianMixture(n_components=3, random_state=0),
    ):
        model.fit(X)
        loaded = mixtorch.load(mixtorch.save(model, folder / "m.mixtorch"))
        np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
        print(f"  {type(model).__name__}: mean log-likelihood {model.score_samples(X).mean():.4f}")
    np.savetxt(folder / "x.csv", X, delimiter=",", header="a,b", comments="")
    argv = ["-q", "fit", str(folder / "x.csv"), "-k", "2", "--out", str(folder / "g.mixtorch")]
    assert main(argv) == 0
    model = str(folder / "g.mixtorch")
    assert main(["-q", "sample", model, "--out", str(folder / "s.parquet")]) == 0
    assert main(["-q", "plot", model, "--out", str(folder / "g.png")]) == 0
    print("  command line: fit, sample to Parquet, plot")
    _progress_bar()


def _progress_bar() -> None:
    import io

    from mixtorch.cli import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = Progress("EM", True, screen)
    for iteration in (1, 2, 3):
        bar.iteration(iteration, -1.5)
    bar.close()
    assert "EM: 3it" in screen.getvalue(), screen.getvalue()
    print("  progress bar (tqdm)")


if __name__ == "__main__":
    print("versions:")
    check_versions(sys.argv[1:] or ["plot", "io", "bayes"])
    print("smoke test:")
    with tempfile.TemporaryDirectory() as folder:
        smoke(Path(folder))
    print("test-min: ok")
