"""The command line, driven through ``main([...])`` with files in a temporary folder."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import mixtorch
from mixtorch import GaussianMixture
from mixtorch.cli import main


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.concatenate([rng.normal(size=(60, 2)) + centre for centre in centres])


@pytest.fixture
def files(tmp_path, blobs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = tmp_path / "data.csv"
    np.savetxt(csv, blobs, delimiter=",", header="a,b", comments="")
    npy = tmp_path / "data.npy"
    np.save(npy, blobs)
    parquet = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": blobs[:, 0], "b": blobs[:, 1]}), parquet)
    return {"csv": csv, "npy": npy, "parquet": parquet, "dir": tmp_path}


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("kind", ["csv", "npy", "parquet"])
def test_fit_then_score_matches_the_library(capsys, files, blobs, kind):
    model_path = files["dir"] / f"{kind}.mixtorch"
    code, out, err = _run(capsys, "fit", files[kind], "-k", 3, "--seed", 0, "--out", model_path)
    assert code == 0, err
    reference = GaussianMixture(3, random_state=0).fit(blobs)
    assert float(out.split()[-1]) == pytest.approx(reference.score(blobs), rel=1e-5)
    assert f"model written to {model_path}" in err
    loaded = mixtorch.load(model_path)
    np.testing.assert_allclose(loaded.means_, reference.means_)
    code, out, _ = _run(capsys, "score", model_path, files["npy"])
    assert code == 0
    assert float(out) == pytest.approx(reference.score(blobs), rel=1e-9)


def test_score_per_sample_predict_and_proba(capsys, files, blobs):
    model_path = files["dir"] / "m.mixtorch"
    code, _, err = _run(capsys, "-q", "fit", files["csv"], "-k", 3, "--seed", 1, "-o", model_path)
    assert code == 0 and err == ""
    code, _, err = _run(capsys, "fit", files["csv"], "-k", 3, "--seed", 1, "-o", model_path, "-q")
    assert code == 0 and err == ""
    model = mixtorch.load(model_path)
    code, out, _ = _run(capsys, "score", model_path, files["csv"], "--per-sample")
    assert code == 0
    np.testing.assert_allclose(np.loadtxt(io.StringIO(out)), model.score_samples(blobs), rtol=1e-9)
    code, out, _ = _run(capsys, "predict", model_path, files["parquet"])
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(out), dtype=int), model.predict(blobs))
    target = files["dir"] / "proba.npy"
    code, _, _ = _run(capsys, "predict", model_path, files["npy"], "--proba", "--out", target)
    assert code == 0
    np.testing.assert_allclose(np.load(target), model.predict_proba(blobs))


def test_sample_is_reproducible_and_from_the_model(capsys, files, blobs):
    model_path = files["dir"] / "s.mixtorch"
    _run(capsys, "fit", files["npy"], "-k", 3, "--seed", 0, "-o", model_path)
    code, out, _ = _run(capsys, "sample", model_path, "-n", 2000, "--seed", 5)
    assert code == 0
    drawn = np.loadtxt(io.StringIO(out), delimiter=",")
    assert drawn.shape == (2000, 2)
    # Samples follow the data's distribution: means agree within sampling error.
    np.testing.assert_allclose(drawn.mean(0), blobs.mean(0), atol=0.3)
    again = _run(capsys, "sample", model_path, "-n", 2000, "--seed", 5)[1]
    assert again == out
    target = files["dir"] / "samples.parquet"
    assert _run(capsys, "sample", model_path, "-n", 7, "--out", target)[0] == 0
    assert mixtorch.cli.read_data(target).shape == (7, 2)


def test_gaussian_model_and_options_it_does_not_take(capsys, files, blobs):
    model_path = files["dir"] / "g.mixtorch"
    code, _, _ = _run(capsys, "fit", files["npy"], "--model", "gaussian", "-o", model_path)
    assert code == 0
    np.testing.assert_allclose(mixtorch.load(model_path).mean_, blobs.mean(0))
    code, _, err = _run(capsys, "fit", files["npy"], "--model", "gaussian", "-k", 2)
    assert code == 2
    assert err.strip() == "mixtorch: error: --model gaussian does not take --components"
    code, _, err = _run(capsys, "predict", model_path, files["npy"])
    assert code == 2 and "no components" in err


def test_select_writes_best_model_and_plot(capsys, files):
    best = files["dir"] / "best.mixtorch"
    picture = files["dir"] / "bic.png"
    code, out, err = _run(
        capsys,
        "select",
        files["csv"],
        "--components",
        "1-4",
        "--covariance",
        "full,spherical",
        "--seed",
        0,
        "--out",
        best,
        "--plot",
        picture,
    )
    assert code == 0, err
    assert "best by bic: n_components=3" in out
    assert mixtorch.load(best).n_components == 3
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_command(capsys, files):
    model_path = files["dir"] / "p.mixtorch"
    _run(capsys, "fit", files["csv"], "-k", 3, "--seed", 0, "-o", model_path)
    target = files["dir"] / "p.png"
    code, out, err = _run(capsys, "plot", model_path, files["csv"], "--out", target)
    assert code == 0, err
    assert out.strip() == str(target)
    assert target.read_bytes()[:4] == b"\x89PNG"
    curve = files["dir"] / "curve.png"
    assert _run(capsys, "plot", model_path, "--kind", "curve", "--out", curve)[0] == 0
    assert curve.stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "missing.csv"], "no data file at missing.csv"),
        (["score", "missing.mixtorch", "missing.csv"], "No model file"),
        (["fit", "{dir}/data.json"], "unknown data format"),
        (["fit", "{dir}/bad.csv"], "not a numeric table"),
        (["score", "{dir}/data.csv", "{dir}/data.csv"], "not a mixtorch model file"),
        (["fit", "{dir}/data.csv", "--model", "gmm", "--algorithm", "magic"], "algorithm"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(capsys, files, argv, message):
    (files["dir"] / "data.json").write_text("{}")
    (files["dir"] / "bad.csv").write_text("1,2\n3,oops\n")
    code, out, err = _run(capsys, *[arg.format(dir=files["dir"]) for arg in argv])
    assert code == 2
    last = err.strip().splitlines()[-1]  # "fitting ..." notes may come first
    assert last.startswith("mixtorch: error: ") and message in last
    assert "Traceback" not in err and err.count("mixtorch: error") == 1


@pytest.mark.parametrize("name", ["kde", "bayes"])
def test_kde_and_bayes_models(capsys, files, blobs, name):
    target = files["dir"] / f"{name}.mixtorch"
    extra = ["-k", 3, "--seed", 0] if name == "bayes" else []
    code, out, err = _run(capsys, "fit", files["npy"], "--model", name, *extra, "-o", target)
    assert code == 0, err
    model = mixtorch.load(target)
    mean = model.score_samples(blobs).mean()  # a KDE's score() is a sum; the CLI says mean
    assert float(out.split()[-1]) == pytest.approx(mean, rel=1e-5)
    code, out, _ = _run(capsys, "score", target, files["csv"])
    assert float(out) == pytest.approx(mean, rel=1e-9)
    code, out, err = _run(capsys, "sample", target, "-n", 5, "--seed", 2)
    assert code == 0, err
    assert np.loadtxt(io.StringIO(out), delimiter=",").shape == (5, 2)
    assert out == _run(capsys, "sample", target, "-n", 5, "--seed", 2)[1]


def test_model_that_is_not_available_is_a_clear_error(capsys, files, monkeypatch):
    monkeypatch.delattr(mixtorch, "GaussianKDE", raising=False)
    code, _, err = _run(capsys, "fit", files["npy"], "--model", "kde")
    assert code == 2 and "GaussianKDE" in err


def test_usage_errors_and_help(capsys):
    assert main([]) == 2
    assert main(["fit"]) == 2
    assert main(["sample", "m.mixtorch", "-n", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("fit", "score", "predict", "sample", "plot", "select", "demo"):
        assert command in text
    assert "Exit codes" in text
    assert main(["fit", "--help"]) == 0
    assert "--covariance" in capsys.readouterr().out


def test_unexpected_errors_exit_1_with_traceback(capsys, files, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(mixtorch.cli, "read_data", broken)
    code, _, err = _run(capsys, "fit", files["npy"])
    assert code == 1
    assert "Traceback" in err and "boom" in err


def test_convergence_warning_is_a_note_not_a_crash(capsys, files):
    code, _, err = _run(
        capsys, "fit", files["npy"], "-k", 3, "--max-iter", 1, "--seed", 0, "--init", "x"
    )
    assert code == 2  # unknown option
    target = files["dir"] / "w.mixtorch"
    code, _, err = _run(
        capsys, "fit", files["npy"], "-k", 3, "--max-iter", 1, "--seed", 3, "-o", target
    )
    assert code == 0
    assert "mixtorch: warning:" in err and "converge" in err


def test_tensor_device_option(capsys, files):
    target = files["dir"] / "cpu.mixtorch"
    code, _, _ = _run(capsys, "fit", files["npy"], "-k", 2, "--device", "cpu", "-o", target)
    assert code == 0
    assert mixtorch.load(target).mixture_.device == torch.device("cpu")


def test_progress_bar_draws_only_on_a_terminal():
    from mixtorch.cli import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = Progress("sweep", True, screen)
    bar(1, 4, {"n_components": 2, "covariance_type": "full"})
    bar(4, 4, None)
    text = screen.getvalue()
    assert "sweep [#######" in text and "1/4 K=2 full" in text and text.endswith("\n")
    assert "4/4" in text
    switched_off, log = Terminal(), io.StringIO()
    Progress("sweep", False, switched_off)(1, 2)
    Progress("sweep", True, log)(1, 2)  # not a terminal: logs stay clean
    assert switched_off.getvalue() == "" and log.getvalue() == ""


def test_plot_traces_needs_mcmc_draws(capsys, files):
    model_path = files["dir"] / "t.mixtorch"
    _run(capsys, "fit", files["npy"], "-k", 2, "--seed", 0, "-o", model_path)
    code, _, err = _run(capsys, "plot", model_path, "--kind", "traces")
    assert code == 2 and "no MCMC draws" in err
