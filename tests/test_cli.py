"""The command line, driven through ``main([...])`` with files in a temporary folder."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import mixtorch
from conftest import make_separated_blocks
from mixtorch import GaussianMixture
from mixtorch._tables import read_data
from mixtorch.cli import main


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    return make_separated_blocks([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]], 60, seed=0)


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
    code, _, err = _run(capsys, "-q", "fit", files["npy"], "-k", 3, "--seed", 1, "-o", model_path)
    assert code == 0 and err == ""
    code, _, err = _run(capsys, "fit", files["npy"], "-k", 3, "--seed", 1, "-o", model_path, "-q")
    assert code == 0 and err == ""
    model = mixtorch.load(model_path)
    code, out, _ = _run(capsys, "score", model_path, files["csv"], "--per-sample")
    assert code == 0
    assert out.splitlines()[0] == "log_density"
    scores = np.loadtxt(io.StringIO(out), skiprows=1)
    np.testing.assert_allclose(scores, model.score_samples(blobs), rtol=1e-9)
    code, out, _ = _run(capsys, "predict", model_path, files["parquet"])
    assert out.splitlines()[0] == "label"
    labels = np.loadtxt(io.StringIO(out), dtype=int, skiprows=1)
    np.testing.assert_array_equal(labels, model.predict(blobs))
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
    assert read_data(target).shape == (7, 2)


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
        (["fit", "missing.csv", "-k", "2"], "no data file at missing.csv"),
        (["score", "missing.mixtorch", "missing.csv"], "No model file"),
        (["fit", "{dir}/data.json", "-k", "2"], "unknown data format"),
        (["fit", "{dir}/bad.csv", "-k", "2"], "column 1 of"),
        (["score", "{dir}/data.csv", "{dir}/data.csv"], "not a mixtorch model file"),
        (["fit", "{dir}/data.csv", "-k", "2", "--algorithm", "magic"], "algorithm"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(capsys, files, argv, message):
    (files["dir"] / "data.json").write_text("{}")
    (files["dir"] / "bad.csv").write_text("1,2\n3,oops\n")
    code, out, err = _run(capsys, *[arg.format(dir=files["dir"]) for arg in argv])
    assert code == 2
    lines = err.strip().splitlines()  # the error alone: no note of work begun
    assert len(lines) == 1 and lines[0].startswith("mixtorch: error: ") and message in lines[0]


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
    monkeypatch.setattr(mixtorch, "GaussianKDE", None)
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

    monkeypatch.setattr(mixtorch._cli_commands, "read_data", broken)
    code, _, err = _run(capsys, "fit", files["npy"], "-k", 2)
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
    assert "sweep:" in text and "4/4" in text and "K=2 full" in text and text.endswith("\n")
    # EM: no total (the iteration count is unknown), elapsed time and the log-likelihood
    em_screen = Terminal()
    em = Progress("EM", True, em_screen)
    for iteration, value in [(1, -3.5), (2, -3.25), (1, -3.75), (2, -3.125)]:
        em.iteration(iteration, value)
    em.close()
    text = em_screen.getvalue()
    assert "EM: 4it [00:00" in text and "init 2, log-likelihood -3.125" in text
    switched_off, log = Terminal(), io.StringIO()
    Progress("sweep", False, switched_off)(1, 2)
    Progress("sweep", True, log)(1, 2)  # not a terminal: logs stay clean
    assert switched_off.getvalue() == "" and log.getvalue() == ""


def test_plot_traces_needs_mcmc_draws(capsys, files):
    model_path = files["dir"] / "t.mixtorch"
    _run(capsys, "fit", files["npy"], "-k", 2, "--seed", 0, "-o", model_path)
    code, _, err = _run(capsys, "plot", model_path, "--kind", "traces")
    assert code == 2 and "no MCMC draws" in err


# -- issue 13: no row dropped, no input overwritten, one-line errors -------------------
def _reference_mean(values: np.ndarray) -> float:
    return GaussianMixture(1, random_state=0).fit(values).score(values)


@pytest.mark.parametrize(
    "first",
    ["\ufeff1.5,2.5", "1.5,2.5"],
    ids=["bom", "plain"],
)
def test_first_row_is_kept_with_or_without_a_byte_order_mark(capsys, tmp_path, blobs, first):
    path = tmp_path / "d.csv"
    body = "\n".join(f"{a:.17g},{b:.17g}" for a, b in blobs)
    path.write_text(first + "\n" + body + "\n", encoding="utf-8")
    expected = np.vstack([[1.5, 2.5], blobs])
    code, out, err = _run(capsys, "fit", path, "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert code == 0, err
    assert f"to {len(expected)} x 2 data" in err
    assert float(out.split()[-1]) == pytest.approx(_reference_mean(expected), rel=1e-5)


def test_na_in_the_first_row_is_an_error_not_a_header(capsys, tmp_path, blobs):
    path = tmp_path / "na.csv"
    np.savetxt(path, blobs, delimiter=",")
    path.write_text("1.0,NA\n" + path.read_text())
    code, _, err = _run(capsys, "fit", path, "-k", 1)
    assert code == 2 and "cannot tell whether the first line" in err
    code, _, err = _run(capsys, "fit", path, "-k", 1, "--no-header")
    assert code == 2 and "line 1 of" in err and "'NA'" in err
    # and with a header, a missing value further down names its line and column
    path.write_text("a,b\n1,2\n3,NA\n")
    code, _, err = _run(capsys, "fit", path, "-k", 1)
    assert code == 2 and "line 3 of" in err and "column 'b'" in err


def test_header_switches(capsys, tmp_path, blobs):
    path = tmp_path / "h.csv"
    np.savetxt(path, blobs, delimiter=",", header="10,20", comments="")  # numeric names
    target = tmp_path / "h.mixtorch"
    code, _, err = _run(capsys, "fit", path, "-k", 1, "--header", "-o", target)
    assert code == 0 and f"to {len(blobs)} x 2" in err
    assert list(mixtorch.load(target).feature_names_in_) == ["10", "20"]
    code, _, err = _run(capsys, "fit", path, "-k", 1, "--no-header", "-o", target)
    assert code == 0 and f"to {len(blobs) + 1} x 2" in err


def test_latin1_and_truncated_npy_name_the_file(capsys, tmp_path, blobs):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("caf\xe9,b\n1,2\n3,4\n".encode("latin-1"))
    code, _, err = _run(capsys, "fit", latin, "-k", 1)
    assert code == 2 and "latin.csv is not UTF-8" in err
    cut = tmp_path / "cut.npy"
    np.save(cut, blobs)
    cut.write_bytes(cut.read_bytes()[:-100])
    code, _, err = _run(capsys, "fit", cut, "-k", 1)
    assert code == 2 and "cut.npy" in err and "Traceback" not in err


def test_fit_refuses_to_overwrite_its_input(capsys, files):
    before = files["csv"].read_bytes()
    code, _, err = _run(capsys, "fit", files["csv"], "-k", 2, "--out", files["csv"])
    assert code == 2 and "input file" in err
    assert files["csv"].read_bytes() == before
    model = files["dir"] / "m.mixtorch"
    assert _run(capsys, "fit", files["csv"], "-k", 2, "-o", model)[0] == 0
    code, _, err = _run(capsys, "predict", model, files["csv"], "--out", files["csv"])
    assert code == 2 and files["csv"].read_bytes() == before


@pytest.mark.parametrize("where", ["missing/m.mixtorch", ".", "/proc/m.mixtorch"])
def test_unwritable_out_is_one_line_exit_2_before_fitting(capsys, files, where):
    target = where if where.startswith("/") else files["dir"] / where
    code, _, err = _run(capsys, "fit", files["npy"], "-k", 2, "--out", target)
    assert code == 2
    assert err.strip().startswith("mixtorch: error: cannot write")
    assert "Traceback" not in err and "fitting" not in err  # refused before the work


@pytest.mark.parametrize("device", ["nonsense", "cuda:7", "mps"])
def test_bad_device_is_one_line_exit_2(capsys, files, device):
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        device = "cuda:99"
    code, _, err = _run(capsys, "fit", files["npy"], "-k", 2, "--device", device)
    assert code == 2 and err.count("\n") == 1 and f"--device {device}" in err


def test_out_of_range_requests_are_one_line_exit_2(capsys, files):
    code, _, err = _run(capsys, "fit", files["npy"], "--model", "kde", "--bandwidth", "1e300")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("mixtorch: error:") and "out of range" in err
    model = files["dir"] / "for_sampling.mixtorch"
    assert _run(capsys, "fit", files["npy"], "-k", 2, "--seed", 0, "-o", model)[0] == 0
    code, _, err = _run(capsys, "sample", model, "-n", 10**13)
    assert (
        code == 2 and "Traceback" not in err and err.splitlines()[-1].startswith("mixtorch: error:")
    )


def test_quoted_numbers_repeated_names_and_seeds(capsys, tmp_path, blobs):
    quoted = tmp_path / "quoted.csv"
    lines = ['"a","b"'] + [f'"{float(a)!r}",{float(b)!r}' for a, b in blobs]
    quoted.write_text("\n".join(lines) + "\n")
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, blobs, delimiter=",", header="a,b", comments="")
    model = tmp_path / "m.mixtorch"
    assert _run(capsys, "fit", plain, "-k", 2, "--seed", 0, "-o", model)[0] == 0
    scores = [_run(capsys, "score", model, path) for path in (plain, quoted)]
    assert scores[0][0] == scores[1][0] == 0 and scores[0][1] == scores[1][1]
    repeated = tmp_path / "repeated.csv"
    np.savetxt(repeated, blobs, delimiter=",", header="a,a", comments="")
    code, _, err = _run(capsys, "fit", repeated, "-k", 1)
    assert code == 2 and "'a' more than once" in err
    assert _run(capsys, "fit", repeated, "-k", 1, "--columns", "0")[0] == 0  # one 'a' chosen
    for command in (["fit", plain, "-k", 1], ["sample", model], ["select", plain]):
        code, _, err = _run(capsys, *command, "--seed", -5)
        assert code == 2 and "seed in [0, 2**32 - 1]" in err


# -- issue 16: names, columns, stdin, outputs ----------------------------------------
def test_column_names_travel_to_the_model_and_every_output(capsys, files, blobs):
    model_path = files["dir"] / "named.mixtorch"
    assert _run(capsys, "fit", files["parquet"], "-k", 3, "--seed", 0, "-o", model_path)[0] == 0
    assert list(mixtorch.load(model_path).feature_names_in_) == ["a", "b"]
    code, out, _ = _run(capsys, "sample", model_path, "-n", 4, "--seed", 1)
    assert code == 0 and out.splitlines()[0] == "a,b" and len(out.splitlines()) == 5
    target = files["dir"] / "drawn.parquet"
    _run(capsys, "sample", model_path, "-n", 4, "--out", target)
    assert read_data(target).names == ["a", "b"]
    # a CSV with the columns swapped is matched by name
    swapped = files["dir"] / "swapped.csv"
    np.savetxt(swapped, blobs[:, ::-1], delimiter=",", header="b,a", comments="")
    scores = [_run(capsys, "score", model_path, path)[1] for path in (files["csv"], swapped)]
    assert float(scores[0]) == pytest.approx(float(scores[1]), rel=1e-12)
    # a column the model was not fitted on is refused, not ignored; --drop removes it
    wider = files["dir"] / "wider.csv"
    np.savetxt(wider, np.c_[blobs, blobs[:, :1]], delimiter=",", header="a,b,c", comments="")
    code, _, err = _run(capsys, "score", model_path, wider)
    assert code == 2 and "column(s) c" in err and "--drop c" in err and len(err.splitlines()) == 1
    code, out, _ = _run(capsys, "score", model_path, wider, "--drop", "c")
    assert code == 0 and float(out) == pytest.approx(float(scores[0]), rel=1e-12)
    picture = files["dir"] / "named.png"
    assert _run(capsys, "plot", model_path, "--out", picture)[0] == 0


def test_columns_drop_and_text_columns(capsys, tmp_path, blobs):
    path = tmp_path / "mixed.csv"
    lines = ["city,a,b"] + [f"Paris,{float(a)!r},{float(b)!r}" for a, b in blobs]
    path.write_text("\n".join(lines) + "\n")
    code, _, err = _run(capsys, "fit", path, "-k", 1)
    assert code == 2 and "column 'city'" in err and "--drop" in err
    target = tmp_path / "m.mixtorch"
    code, out, _ = _run(capsys, "fit", path, "-k", 1, "--drop", "city", "-o", target)
    assert code == 0 and float(out.split()[-1]) == pytest.approx(_reference_mean(blobs), rel=1e-5)
    code, out, _ = _run(capsys, "fit", path, "-k", 1, "--columns", "b", "-o", target)
    assert float(out.split()[-1]) == pytest.approx(_reference_mean(blobs[:, 1:]), rel=1e-5)
    assert list(mixtorch.load(target).feature_names_in_) == ["b"]
    code, _, err = _run(capsys, "fit", path, "-k", 1, "--columns", "nope")
    assert code == 2 and "no column 'nope'" in err


def test_stdin_and_gzip(capsys, tmp_path, blobs, monkeypatch):
    import gzip

    text = "a,b\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in blobs) + "\n"
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    target = tmp_path / "gz.mixtorch"
    code, out, _ = _run(capsys, "fit", packed, "-k", 1, "-o", target)
    assert code == 0 and float(out.split()[-1]) == pytest.approx(_reference_mean(blobs), 1e-5)
    assert target.is_file()

    class Stdin:
        buffer = io.BytesIO(text.encode())

    monkeypatch.setattr("sys.stdin", Stdin())
    code, out, _ = _run(capsys, "score", target, "-")
    assert code == 0 and float(out) == pytest.approx(_reference_mean(blobs), rel=1e-9)
    code, _, err = _run(capsys, "fit", "-", "-k", 1)
    assert code == 2 and "--out" in err


def test_score_out_and_predict_out_confirm(capsys, files, blobs):
    model_path = files["dir"] / "m.mixtorch"
    _run(capsys, "fit", files["npy"], "-k", 3, "--seed", 0, "-o", model_path)
    target = files["dir"] / "score.csv"
    code, out, err = _run(capsys, "score", model_path, files["npy"], "--out", target)
    assert code == 0 and f"written to {target}" in err
    table = read_data(target)
    assert table.names == ["mean_log_likelihood"]
    assert table.values[0, 0] == pytest.approx(mixtorch.load(model_path).score(blobs), 1e-9)
    labels = files["dir"] / "labels.csv"
    code, _, err = _run(capsys, "predict", model_path, files["npy"], "--out", labels)
    assert code == 0 and f"written to {labels}" in err


def test_fit_without_k_is_refused_not_k_1(capsys, files):
    code, _, err = _run(capsys, "fit", files["npy"])
    assert code == 2 and "-k/--components" in err and "select" in err


def test_reg_covar_tol_and_bandwidth(capsys, files, blobs):
    target = files["dir"] / "r.mixtorch"
    argv = ["fit", files["npy"], "-k", 2, "--reg-covar", 0.5, "--tol", 1e-2, "-o", target]
    assert _run(capsys, *argv, "--seed", 0)[0] == 0
    model = mixtorch.load(target)
    assert model.reg_covar == 0.5 and model.tol == 1e-2
    reference = GaussianMixture(2, reg_covar=0.5, tol=1e-2, random_state=0).fit(blobs)
    np.testing.assert_allclose(np.sort(model.weights_), np.sort(reference.weights_), rtol=1e-6)
    kde = files["dir"] / "k.mixtorch"
    argv = ["fit", files["npy"], "--model", "kde", "--bandwidth", 0.7, "-o", kde]
    assert _run(capsys, *argv)[0] == 0
    assert mixtorch.load(kde).bandwidth == 0.7


def test_select_formats_and_plot_extra_checked_first(capsys, files, monkeypatch):
    import json

    argv = ["select", files["csv"], "--components", "1-3", "--covariance", "full", "--seed", 0]
    code, out, _ = _run(capsys, *argv, "--format", "json")
    document = json.loads(out)
    assert code == 0 and document["best_params"]["n_components"] == 3
    assert [row["n_components"] for row in document["table"]] == [1, 2, 3]
    code, out, _ = _run(capsys, *argv, "--format", "csv")
    header, *rows = out.strip().splitlines()
    assert "n_components" in header.split(",") and len(rows) == 3
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    code, out, err = _run(capsys, *argv, "--plot", files["dir"] / "p.png")
    assert code == 2 and "pip install 'mixtorch[plot]'" in err and out == ""


def test_info_shows_the_model(capsys, files):
    import json

    model_path = files["dir"] / "i.mixtorch"
    _run(capsys, "fit", files["csv"], "-k", 3, "--seed", 0, "-o", model_path)
    code, out, _ = _run(capsys, "info", model_path, "--format", "json")
    record = json.loads(out)
    model = mixtorch.load(model_path)
    assert record["class"] == "GaussianMixture"
    assert record["parameters"]["n_components"] == 3
    assert record["feature_names_in"] == ["a", "b"]
    assert record["fit"]["n_iter"] == model.n_iter_
    assert record["fit"]["converged"] == model.converged_
    code, out, _ = _run(capsys, "info", model_path)
    assert code == 0 and "class: GaussianMixture" in out and "n_components: 3" in out


def test_help_shows_defaults(capsys):
    assert main(["select", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: bic)" in text and "(default: 1-6)" in text and "(default: 100)" in text


def test_help_does_not_import_torch_or_numpy():
    """`mixtorch --help` answers without importing the heavy modules (issue 16)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mixtorch.cli import main\n"
        "assert main(['--help']) == 0 and main(['fit', '--help']) == 0\n"
        "heavy = [name for name in ('torch', 'numpy', 'sklearn') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: mixtorch" in result.stdout


def test_plot_axes_are_labelled_with_the_column_names(capsys, files, monkeypatch):
    from matplotlib.figure import Figure

    labels = []
    real = Figure.savefig

    def recording(figure, *args, **kwargs):
        labels.append((figure.axes[0].get_xlabel(), figure.axes[0].get_ylabel()))
        return real(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording)
    model_path = files["dir"] / "axes.mixtorch"
    assert _run(capsys, "fit", files["csv"], "-k", 3, "--seed", 0, "-o", model_path)[0] == 0
    code, _, err = _run(capsys, "plot", model_path, files["csv"], "--out", files["dir"] / "a.png")
    assert code == 0, err
    assert labels == [("a", "b")]
