"""The documentation's code blocks that no other test runs, run as a reader would.

Already covered elsewhere: the README's ``python`` blocks (``tests/test_readme.py``), the
user guide's ``>>>`` examples (``docs/user_guide/*.rst``, collected as doctests through
pyproject's ``--doctest-glob``) and the gallery (``make docs`` runs ``examples/``). This
file runs the rest: the ``.. code-block:: python`` blocks of ``docs/index.rst`` and the
user guide, the ``python`` fences of ``docs/distributed.md`` and the command-line session
of ``docs/user_guide/cli.rst``, each as written, warnings as errors, and checks what their
comments and the prose around them claim.

Not run here: ``torchrun`` with two processes (``docs/distributed.md``'s ``bash`` block; the
script runs as a one-rank process group instead), ``mixtorch demo`` (``tests/test_demo.py``)
and ``pip``/``make`` commands.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from _gloo import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def rst_blocks(path: Path, language: str) -> list[str]:
    """The ``.. code-block:: LANGUAGE`` blocks of an reStructuredText page, dedented."""
    text = path.read_text(encoding="utf-8")
    directive = rf"^\.\. code-block:: {language}\n(?:[ \t]*:[^\n]*\n)*\n"  # and its options
    body = r"((?:[ \t]+[^\n]*\n|[ \t]*\n)+)"  # indented lines and blank ones
    pattern = directive + body
    return [textwrap.dedent(block).strip() + "\n" for block in re.findall(pattern, text, re.M)]


def md_blocks(path: Path, language: str) -> list[str]:
    """The fenced ``LANGUAGE`` blocks of a Markdown page."""
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.M | re.S)


#: The Python blocks each page has, all of them run below: a block added to a page fails
#: this count until a test here runs it (or a ``>>>`` example replaces it).
PYTHON_BLOCKS = {"index.rst": 1, "user_guide/bayesian.rst": 1, "distributed.md": 3}


def test_every_python_block_of_the_docs_is_run_here():
    pages = sorted(DOCS.glob("*.rst")) + sorted(DOCS.glob("user_guide/*.rst"))
    pages += [page for page in sorted(DOCS.glob("*.md")) if page.name != "benchmarks.md"]
    counts = {}
    for page in pages:
        blocks = rst_blocks(page, "python") if page.suffix == ".rst" else md_blocks(page, "python")
        if blocks:
            counts[str(page.relative_to(DOCS))] = len(blocks)
    assert counts == PYTHON_BLOCKS


def run_python(code: str, name: str) -> dict:
    """Execute ``code`` as a reader's script (fresh namespace, warnings are errors)."""
    namespace: dict = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, name, "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def test_index_block_runs_and_its_comments_hold():
    (block,) = rst_blocks(DOCS / "index.rst", "python")
    namespace = run_python(block, "docs/index.rst")
    X, model = namespace["X"], namespace["model"]
    assert model.score_samples(X).shape == (1000,)
    assert model.predict_proba(X).shape == (1000, 3)  # "responsibilities, shape (1000, 3)"
    assert np.isfinite(model.bic(X))


def test_bayesian_block_switches_surplus_components_off():
    (block,) = rst_blocks(DOCS / "user_guide" / "bayesian.rst", "python")
    namespace = run_python(block, "docs/user_guide/bayesian.rst")
    model = namespace["model"]
    assert namespace["used"].sum() == 2  # the block's comment: 2
    # "can take more than the default max_iter=100 iterations (here about 160)"
    assert model.converged_ and 100 < model.n_iter_ <= 200


def test_large_data_block_fits_from_a_npy_file(tmp_path, monkeypatch, capsys):
    """docs/distributed.md's out-of-core example, on 200,000 of its million rows (the
    whole file takes 20 s on 2 cores; the code is otherwise the page's)."""
    block = md_blocks(DOCS / "distributed.md", "python")[0]
    assert "shape=(1_000_000, 16)" in block
    block = block.replace("shape=(1_000_000, 16)", "shape=(200_000, 16)")
    monkeypatch.chdir(tmp_path)
    model = run_python(block, "docs/distributed.md")["model"]
    assert isinstance(model.means_, np.ndarray)  # "Results of a fit from a source are NumPy"
    assert model.means_.shape == (16, 16) and model.means_.dtype == np.float32
    # "With verbose >= 1 each pass prints its row count and time"
    assert "Pass 1: 200000 rows in" in capsys.readouterr().out


def test_torchrun_script_runs_as_one_rank(tmp_path):
    """docs/distributed.md: write the shards, then run fit_shards.py with the environment
    torchrun gives a rank (a one-rank gloo group on loopback)."""
    shards, script = md_blocks(DOCS / "distributed.md", "python")[1:3]
    assert script.startswith("# fit_shards.py")
    (tmp_path / "fit_shards.py").write_text(script, encoding="utf-8")
    environment = {
        **os.environ,
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",  # the gloo branch of the script
        "PYTHONWARNINGS": "error",
    }
    for code, name in ((shards, "write_shards.py"), (script, "fit_shards.py")):
        (tmp_path / name).write_text(code, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, name],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        "part-000.npy",
        "part-001.npy",
    ]
    saved = np.load(tmp_path / "model.npz")
    assert saved["weights"].shape == (8,) and saved["means"].shape == (8, 4)
    np.testing.assert_allclose(saved["weights"].sum(), 1.0, rtol=1e-6)


def cli_session() -> list[list[str]]:
    """The commands of docs/user_guide/cli.rst's session, as argument lists."""
    (block,) = rst_blocks(DOCS / "user_guide" / "cli.rst", "sh")
    commands = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [command for command in commands if command]


def test_cli_session_runs_as_written(tmp_path, monkeypatch, capsys):
    """Each command of the session, on a small two-group data.csv (``mixtorch demo`` is
    left to tests/test_demo.py)."""
    pytest.importorskip("matplotlib")  # `mixtorch plot` needs the [plot] extra
    from mixtorch.cli import main

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(120, 2)), rng.normal(size=(80, 2)) + [6.0, 2.0]])
    np.savetxt(tmp_path / "data.csv", X, delimiter=",", header="x,y", comments="")
    monkeypatch.chdir(tmp_path)
    commands = cli_session()
    assert all(command[0] == "mixtorch" for command in commands)
    ran = []
    for command in commands:
        if command[1] == "demo":
            continue
        capsys.readouterr()
        assert main(command[1:]) == 0, (command, capsys.readouterr().err)
        ran.append(command[1])
    assert ran == ["fit", "score", "score", "predict", "sample", "plot", "select"]
    for name in ("model.mixtorch", "logdens.csv", "labels.csv", "new.csv", "model.png"):
        assert (tmp_path / name).is_file(), name
    # the outputs carry headers; -n 1000 rows of the model's two columns
    assert (tmp_path / "new.csv").read_text().splitlines()[0] == "x,y"
    assert len((tmp_path / "new.csv").read_text().splitlines()) == 1001
    assert len((tmp_path / "logdens.csv").read_text().splitlines()) == 201
