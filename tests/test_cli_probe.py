"""The command line under careless use: every bad input is one line on stderr naming the
option or file and what to do, with exit code 2; no traceback, no silently dropped cell,
no NaN passed on. Driven through ``main([...])`` as in test_cli.py."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

import mixtorch
from conftest import make_separated_blocks
from mixtorch.cli import main


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    return make_separated_blocks([[0.0, 0.0], [6.0, 0.0]], 30, seed=0)


@pytest.fixture
def folder(tmp_path, blobs):
    np.savetxt(tmp_path / "data.csv", blobs, delimiter=",", header="a,b", comments="")
    np.save(tmp_path / "data.npy", blobs)
    return tmp_path


@pytest.fixture
def model(folder, capsys):
    path = folder / "m.mixtorch"
    assert (
        main(["-q", "fit", str(folder / "data.csv"), "-k", "2", "--seed", "0", "-o", str(path)])
        == 0
    )
    capsys.readouterr()
    return path


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error(capsys, *argv) -> str:
    """The one stderr line of a refused command (exit code 2)."""
    code, out, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    return lines[0]


# -- CSV: no cell dropped, line numbers right, damaged gzip ---------------------------
@pytest.mark.parametrize(
    ("text", "line", "cells"),
    [
        ("a,b\n1,2\n3,4,5\n6,7\n", 3, 3),  # a surplus cell was dropped silently
        ("a,b\n1,2,\n3,4,\n5,6,\n", 2, 3),  # trailing delimiters
        ("1 2\n3 4\n5 6 7\n8 9\n", 3, 3),  # whitespace-separated
        ("a,b\n1,2\n\n\n3\n4,5\n", 5, 1),  # blank lines still counted in line numbers
    ],
)
def test_rows_with_the_wrong_number_of_cells_are_refused(capsys, tmp_path, text, line, cells):
    path = tmp_path / "ragged.csv"
    path.write_text(text)
    message = _error(capsys, "fit", path, "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert f"line {line} of {path} has {cells} cells, expected" in message


def test_a_short_row_is_refused_even_when_its_missing_cell_is_not_read(capsys, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n6,7\n")
    message = _error(capsys, "fit", path, "--columns", "a", "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert "line 3" in message and "1 cells, expected 2" in message


def test_a_quoted_header_cell_may_hold_the_delimiter(capsys, tmp_path, blobs):
    path = tmp_path / "quoted.csv"
    rows = "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in blobs)
    path.write_text(f'"x,y",b\n{rows}\n')
    target = tmp_path / "q.mixtorch"
    code, _, err = _run(capsys, "fit", path, "-k", 1, "-o", target)
    assert code == 0, err
    assert list(mixtorch.load(target).feature_names_in_) == ["x,y", "b"]


@pytest.mark.parametrize("cell", ["1_000", "\u0661", "\uff11"])
def test_numbers_numpy_does_not_read_are_named_cells(capsys, tmp_path, cell):
    path = tmp_path / "odd.csv"
    path.write_text(f"a,b\n1,2\n{cell},3\n4,5\n", encoding="utf-8")
    message = _error(capsys, "fit", path, "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert f"column 'a' of {path} is not numeric" in message and "line 3" in message


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_gzip_file_is_one_line(capsys, tmp_path, blobs, damage):
    text = (
        "a,b\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in np.tile(blobs, (20, 1))) + "\n"
    )
    packed = bytearray(gzip.compress(text.encode()))
    if damage == "truncated":
        packed = packed[: len(packed) // 2]
    else:
        packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "d.csv.gz"
    path.write_bytes(bytes(packed))
    message = _error(capsys, "fit", path, "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert str(path) in message and "cannot be read" in message


def test_standard_input_is_named_as_such(capsys, tmp_path, monkeypatch):
    class Stdin:
        buffer = io.BytesIO(b"")

    monkeypatch.setattr("sys.stdin", Stdin())
    message = _error(capsys, "fit", "-", "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert "standard input ('-') is empty" in message


# -- .npy and Parquet: NaN, infinities, no columns, objects ---------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_npy_and_parquet_values_name_the_file_row_and_column(
    capsys, tmp_path, blobs, bad
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = blobs.copy()
    values[4, 1] = bad
    npy, parquet = tmp_path / "bad.npy", tmp_path / "bad.parquet"
    np.save(npy, values)
    pq.write_table(pa.table({"a": values[:, 0], "b": values[:, 1]}), parquet)
    for path, column in ((npy, "column 1"), (parquet, "column 'b'")):
        message = _error(capsys, "fit", path, "-k", 1, "-o", tmp_path / "m.mixtorch")
        assert f"{path} holds" in message and f"row 5, {column}" in message
        assert "fill or remove" in message and "HistGradientBoosting" not in message


def test_non_finite_data_are_refused_by_score_and_select_too(capsys, model, tmp_path, blobs):
    values = blobs.copy()
    values[0, 0] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, values)
    assert "row 1, column 0" in _error(capsys, "score", model, path)
    assert "row 1, column 0" in _error(capsys, "select", path, "--components", "1-2")


def test_npy_without_columns_or_with_objects(capsys, tmp_path):
    empty = tmp_path / "wide.npy"
    np.save(empty, np.empty((5, 0)))
    assert f"{empty} has no columns" in _error(capsys, "fit", empty, "-k", 1)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    message = _error(capsys, "fit", objects, "-k", 1)
    assert "Python objects" in message and "allow_pickle" not in message
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x80\x04" + bytes(200))
    message = _error(capsys, "fit", garbage, "-k", 1)
    assert "not a valid .npy file" in message and "allow_pickle" not in message


# -- paths that are not files -------------------------------------------------------
def test_data_paths_that_are_not_files(capsys, tmp_path):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    assert "is a directory, not a data file" in _error(capsys, "fit", folder, "-k", 1)
    message = _error(capsys, "fit", "/dev/null", "-k", 1, "-o", tmp_path / "m.mixtorch")
    assert "not a regular file" in message and "'-'" in message


def test_a_model_cannot_come_from_standard_input(capsys, folder):
    message = _error(capsys, "score", "-", folder / "data.csv")
    assert "MODEL cannot be read from standard input" in message


# -- models that cannot do what the command asks -------------------------------------
@pytest.mark.parametrize("kind", ["regressor", "imputer"])
def test_score_sample_and_plot_refuse_models_without_a_density(capsys, tmp_path, blobs, kind):
    if kind == "regressor":
        fitted = mixtorch.GaussianMixtureRegressor(2, random_state=0).fit(blobs[:, :1], blobs[:, 1])
    else:
        fitted = mixtorch.GaussianMixtureImputer(2, random_state=0).fit(blobs)
    path = mixtorch.save(fitted, tmp_path / f"{kind}.mixtorch")
    data = tmp_path / "x.npy"
    np.save(data, blobs)
    for argv in (
        ["score", path, data],
        ["sample", path],
        ["plot", path, "--out", tmp_path / "p.png"],
    ):
        message = _error(capsys, *argv)
        assert f"'mixtorch {argv[0]}' needs a model with a density" in message
        assert type(fitted).__name__ in message


def test_data_of_the_wrong_width_name_the_file(capsys, tmp_path, blobs):
    model = tmp_path / "unnamed.mixtorch"
    np.save(tmp_path / "two.npy", blobs)
    assert main(["-q", "fit", str(tmp_path / "two.npy"), "-k", "2", "-o", str(model)]) == 0
    three = tmp_path / "three.npy"
    np.save(three, np.c_[blobs, blobs[:, 0]])
    for command in ("score", "predict"):
        message = _error(capsys, command, model, three)
        assert f"{three} has 3 column(s) but the model was fitted on 2" in message


# -- argparse errors: one line each -----------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "m.mixtorch", "-n", "-1"], "argument -n/--n-samples: expected a positive"),
        (["sample", "m.mixtorch", "--n-samples", "1e99"], "expected a positive integer"),
        (["sample", "m.mixtorch", "-n", "abc"], "got 'abc'"),
        (["fit", "d.csv", "-k", "1", "--header", "--no-header"], "not allowed with"),
        (["plot", "m.mixtorch", "--kind", "foo"], "invalid choice: 'foo'"),
        (["fit", "d.csv", "--tol", "abc"], "invalid float value"),
        ([], "required: COMMAND"),
        (["fitt"], "invalid choice: 'fitt'"),
        (["fit", "d.csv", "--columns", "a,a"], "'a' given more than once"),
        (["fit", "d.csv", "-k", "1", "--out", ""], "expected a file name"),
        (["select", "d.csv", "--plot", " "], "expected a file name"),
        (["demo", "--out", ""], "expected a file name"),
    ],
)
def test_usage_errors_are_one_line_pointing_to_help(capsys, argv, message):
    line = _error(capsys, *argv)
    assert message in line and "--help'" in line


def test_n_samples_is_also_a_long_option(capsys, model):
    code, out, _ = _run(capsys, "sample", model, "--n-samples", 3, "--seed", 0)
    assert code == 0 and len(out.splitlines()) == 4  # header and three rows


# -- options that cannot work ---------------------------------------------------------
def test_more_components_than_rows_is_refused_before_fitting(capsys, folder):
    data = folder / "data.csv"
    message = _error(capsys, "fit", data, "-k", 500)
    assert "has 60 row(s), too few: -k 500" in message and "use -k 60 or less" in message
    one = folder / "one.csv"
    one.write_text("a,b\n1,2\n")
    assert "has 1 row(s), too few" in _error(capsys, "fit", one, "--model", "gaussian")


def test_model_parameters_are_checked_first_and_name_the_option(capsys, folder):
    message = _error(capsys, "fit", folder / "data.csv", "-k", 1, "--tol", -1)
    assert message.startswith("mixtorch: error: --tol -1.0: ") and "'tol' parameter" in message
    message = _error(capsys, "fit", folder / "data.csv", "--model", "kde", "--bandwidth", "abc")
    assert "--bandwidth abc: " in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--components", "5-1"], "--components 5-1 is an empty range; write 1-5"),
        (["--components", "1-1000000000"], "give at most 10000"),
        (["--components", "2,2"], "repeats 2"),
        (["--components", "0-2"], "must be at least 1"),
        (["--components", ","], "--components expects e.g. 1-6"),
        (["--components", "1-100"], "use values up to 60"),
        (["--covariance", "foo"], "--covariance 'foo': 'foo' is not a covariance type"),
        (["--covariance", "full,full"], "names a covariance type twice"),
        (["--cv", "3"], "--cv 3 sets the folds of --criterion cv, not of bic"),
        (["--criterion", "cv", "--cv", "1"], "at least 2 folds"),
        (["--criterion", "cv", "--cv", "100"], "use --cv 60 or less"),
    ],
)
def test_select_options_that_cannot_work(capsys, folder, options, message):
    assert message in _error(capsys, "select", folder / "data.csv", *options)


def test_select_refuses_one_file_for_both_outputs_and_pictures_it_cannot_write(capsys, folder):
    same = folder / "same.mixtorch"
    picture = folder / "same.png"
    picture.symlink_to(same)  # two names, one file
    data = folder / "data.csv"
    message = _error(capsys, "select", data, "--components", 1, "--out", same, "--plot", picture)
    assert "--plot and --out are both" in message and not same.exists()
    message = _error(capsys, "select", data, "--components", 1, "--plot", folder / "p.json")
    assert "--plot" in message and "'.json'" in message


def test_select_covariance_list_allows_spaces_and_capitals(capsys, folder):
    argv = ["select", folder / "data.csv", "--components", 1, "--covariance", "Full, diag"]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert "diag" in out


# -- outputs ------------------------------------------------------------------------
def test_dash_out_is_standard_output_for_tables_and_refused_for_models(capsys, model, folder):
    code, out, _ = _run(capsys, "sample", model, "-n", 2, "--out", "-")
    assert code == 0 and out.splitlines()[0] == "a,b" and len(out.splitlines()) == 3
    code, out, _ = _run(capsys, "score", model, folder / "data.csv", "--out", "-")
    assert code == 0 and np.isfinite(float(out))
    assert not (folder / "-").exists()
    message = _error(capsys, "fit", folder / "data.csv", "-k", 1, "--out", "-")
    assert "cannot be written to standard output" in message


def test_output_format_is_checked_before_the_work(capsys, model, folder):
    message = _error(capsys, "predict", model, folder / "data.csv", "--out", folder / "x.json")
    assert message.endswith("end the name with .csv, .npy or .parquet.")
    message = _error(capsys, "plot", model, "--out", folder / "p.json")
    assert "matplotlib cannot write '.json'" in message


def test_unwritable_places_say_what_is_wrong(capsys, model, folder):
    inside_a_file = folder / "data.csv" / "x.csv"
    message = _error(capsys, "sample", model, "--out", inside_a_file)
    assert "data.csv is a file, not a folder" in message
    message = _error(capsys, "sample", model, "--out", "/proc/x.csv")
    assert "cannot write /proc/x.csv" in message and "/proc/.x.csv" not in message


def test_plot_refuses_data_it_would_not_draw(capsys, tmp_path):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.random.default_rng(0).normal(size=(50, 3)))
    model = tmp_path / "wide.mixtorch"
    assert main(["-q", "fit", str(wide), "-k", "2", "--seed", "0", "-o", str(model)]) == 0
    message = _error(capsys, "plot", model, wide, "--out", tmp_path / "p.png")
    assert "drawn only in density plots" in message and "leave DATA out" in message


def test_demo_checks_its_folder_first(capsys, folder):
    message = _error(capsys, "demo", "--out", folder / "data.csv", "--components", 1)
    assert "is a file" in message and "give a folder name" in message
    message = _error(capsys, "demo", "--out", folder / "data.csv" / "sub", "--components", 1)
    assert "is a file, not a folder" in message


# -- a failing command leaves one line: notes come once the work is done --------------
@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("a\n5\n5\n5\n", ["--model", "gaussian"]),  # a covariance of zeros
        ("a\n1e308\n0.9e308\n0.5e308\n", ["-k", "1"]),  # squares overflow float64
    ],
)
def test_a_fit_that_fails_leaves_only_its_error(capsys, tmp_path, text, options):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    message = _error(capsys, "fit", path, *options, "-o", tmp_path / "m.mixtorch")
    assert "fitting" not in message and not (tmp_path / "m.mixtorch").exists()


def test_a_fit_that_succeeds_says_what_it_did(capsys, folder):
    target = folder / "m2.mixtorch"
    code, out, err = _run(capsys, "fit", folder / "data.csv", "-k", 2, "--seed", 0, "-o", target)
    assert code == 0 and out.startswith("mean log-likelihood")
    fitted, written = err.strip().splitlines()
    assert fitted.startswith("fitted GaussianMixture(") and "to 60 x 2 data (" in fitted
    assert "n_iter=" in fitted and written == f"model written to {target}"


def test_select_notes_its_outputs_only_once_all_are_written(capsys, folder, monkeypatch):
    import mixtorch.plotting

    def broken(result):
        raise ValueError("the plot failed")

    monkeypatch.setattr(mixtorch.plotting, "plot_criterion", broken)
    best, picture = folder / "best.mixtorch", folder / "bic.png"
    argv = ["select", folder / "data.csv", "--components", 1, "--out", best, "--plot", picture]
    assert _error(capsys, *argv).endswith("the plot failed")


def test_a_progress_bar_whose_work_failed_is_erased():
    from mixtorch.cli import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with pytest.raises(ValueError), Progress("EM", True, screen) as bar:
        bar.iteration(1, -3.5)
        raise ValueError("diverged")
    assert "EM" in screen.getvalue() and "\n" not in screen.getvalue()  # no line left
    kept = Terminal()
    with Progress("EM", True, kept) as bar:
        bar.iteration(1, -3.5)
    assert kept.getvalue().endswith("\n")


# -- plots of values float arithmetic cannot draw -------------------------------------
@pytest.fixture
def line_model(tmp_path, blobs, capsys):
    data = tmp_path / "line.npy"
    np.save(data, blobs[:, :1])
    path = tmp_path / "line.mixtorch"
    assert main(["-q", "fit", str(data), "-k", "2", "--seed", "0", "-o", str(path)]) == 0
    capsys.readouterr()
    return path


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("a\n1e308\n-1e308\n0.5\n", 1),  # the range overflows
        ("a\n1e308\n1e308\n1e308\n", 1),  # the histogram cannot be binned
        ("a,b\n1e308,1\n-1e308,2\n0.5,3\n", 2),  # matplotlib's limits overflow
        ("a,b\n1e200,1\n2e200,2\n0.5,3\n", 2),  # squared distances overflow
    ],
)
def test_plot_refuses_data_too_large_to_draw(capsys, tmp_path, model, line_model, text, width):
    path = tmp_path / "huge.csv"
    path.write_text(text)
    chosen = line_model if width == 1 else model
    message = _error(capsys, "plot", chosen, path, "--out", tmp_path / "p.png")
    assert f"{path} holds values up to" in message and "too large to draw" in message
    assert "rescale the data" in message and not (tmp_path / "p.png").exists()


def test_plot_refuses_a_model_too_large_to_draw(capsys, tmp_path):
    data = tmp_path / "huge.csv"
    data.write_text("a\n1e308\n0.9e308\n0.5e308\n")
    model = tmp_path / "huge.mixtorch"
    argv = ["-q", "fit", data, "--model", "kde", "--bandwidth", 1, "-o", model]
    assert _run(capsys, *argv)[0] == 0
    message = _error(capsys, "plot", model, "--out", tmp_path / "p.png")
    assert f"the model in {model} reaches values of 1e+308" in message
    assert "fit it to rescaled data" in message


def test_plot_refuses_values_too_close_for_histogram_bins(capsys, tmp_path, line_model):
    path = tmp_path / "flat.csv"
    path.write_text("a\n1e17\n1e17\n1e17\n")
    message = _error(capsys, "plot", line_model, path, "--out", tmp_path / "p.png")
    assert "too close together" in message and "subtract a constant" in message
    assert "Too many bins" not in message


def test_plot_still_draws_ordinary_data(capsys, tmp_path, line_model):
    path = tmp_path / "line.csv"
    path.write_text("a\n-1.5\n0.5\n3\n")
    code, out, err = _run(capsys, "plot", line_model, path, "--out", tmp_path / "p.png")
    assert code == 0 and err.strip() == f"picture written to {tmp_path / 'p.png'}"


@pytest.mark.parametrize(
    ("model", "kind", "advice"),
    [
        ("gaussian", "auto", "fit the model to 1 or 2 columns (--columns) for a density plot"),
        ("gmm", "density", "use --kind curve"),
        ("kde", "curve", "use --kind density"),
        ("kde", "traces", "fit the model to 1 or 2 columns (--columns) for a density plot"),
        ("gmm", "traces", "use --kind curve."),
    ],
)
def test_plot_kinds_the_model_cannot_give_say_what_to_draw(capsys, tmp_path, model, kind, advice):
    data = tmp_path / "data.npy"
    width = 2 if kind == "curve" else 3
    np.save(data, np.random.default_rng(0).normal(size=(50, width)))
    path = tmp_path / "m.mixtorch"
    extra = ["-k", 2] if model == "gmm" else []
    assert _run(capsys, "-q", "fit", data, "--model", model, *extra, "-o", path)[0] == 0
    message = _error(capsys, "plot", path, "--kind", kind, "--out", tmp_path / "p.png")
    assert advice in message and "looked for" not in message


# -- --header and --no-header are for CSV files only ----------------------------------
@pytest.mark.parametrize("switch", ["--header", "--no-header"])
@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_header_switches_are_refused_for_npy_and_parquet(capsys, folder, blobs, switch, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": blobs[:, 0], "b": blobs[:, 1]}), folder / "data.parquet")
    path = folder / f"data.{kind}"
    message = _error(capsys, "fit", path, "-k", 1, switch, "-o", folder / "m.mixtorch")
    assert f"{switch} applies to CSV files only" in message and str(path) in message
    assert f"leave {switch} out" in message


# -- model files are named as model files -----------------------------------------------
@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("model.csv", "model.mixtorch"),
        ("model.npy", "model.mixtorch"),
        ("model.parquet", "model.mixtorch"),
        ("model.csv.gz", "model.csv.mixtorch"),
        ("model.v2.csv", "model.v2.mixtorch"),
        ("m", "m.mixtorch"),
    ],
)
def test_a_model_file_named_like_data_is_refused(capsys, folder, name, instead):
    target = folder / name
    message = _error(capsys, "fit", folder / "data.csv", "-k", 1, "-o", target)
    assert f"--out {target}: model files are safetensors" in message
    assert message.endswith(f"give e.g. --out {folder / instead}.") and not target.exists()
    message = _error(capsys, "select", folder / "data.csv", "--components", 1, "--out", target)
    assert "end with .mixtorch (or .safetensors)" in message


def test_a_model_file_name_that_is_only_an_ending_is_refused(capsys, folder):
    target = folder / ".mixtorch"
    message = _error(capsys, "fit", folder / "data.csv", "-k", 1, "-o", target)
    assert message.endswith(
        f"--out {target}: give the model file a name before its ending, e.g. "
        f"--out {folder / 'model.mixtorch'}."
    )


def test_a_safetensors_model_name_is_taken(capsys, folder):
    target = folder / "model.safetensors"
    assert _run(capsys, "-q", "fit", folder / "data.csv", "-k", 1, "-o", target)[0] == 0
    assert mixtorch.load(target).n_components == 1


# -- devices the machine does not have ------------------------------------------------
@pytest.mark.parametrize("device", ["cpu:1", "cuda:7", "mps:1", "meta", "foo", "CPU", ""])
def test_devices_that_are_not_there_are_refused_listing_those_that_are(capsys, folder, device):
    import torch

    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    message = _error(capsys, "fit", folder / "data.npy", "-k", 1, "--device", device)
    assert "--device" in message and "give one this machine has: cpu" in message
    assert "Expected one of" not in message  # torch's list of every device type


@pytest.mark.parametrize("device", ["cuda", "mps", "xpu"])
def test_accelerators_the_machine_lacks_are_refused(capsys, folder, device):
    from mixtorch._cli_models import _devices

    if any(name.split(":")[0] == device for name in _devices()):
        pytest.skip(f"this machine has {device}")
    message = _error(capsys, "fit", folder / "data.npy", "-k", 1, "--device", device)
    assert f"--device {device}: no such device here; give one this machine has: cpu" in message


def test_a_cuda_index_beyond_the_devices_lists_them(capsys, folder, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    message = _error(capsys, "fit", folder / "data.npy", "-k", 1, "--device", "cuda:7")
    assert message.endswith(
        "--device cuda:7: no such device here; give one this machine has: cpu, cuda:0, cuda:1."
    )


@pytest.mark.parametrize("device", [" cpu", "cpu "])
def test_a_device_name_with_spaces_is_shown_quoted(capsys, folder, device):
    message = _error(capsys, "fit", folder / "data.npy", "-k", 1, "--device", device)
    assert f"--device {device!r} is not a device name" in message


# -- column names: each given, each once ----------------------------------------------
@pytest.mark.parametrize("header", ["a,,c", 'a,"",c', "a, ,c"])
def test_an_empty_header_name_is_refused_naming_its_position(capsys, tmp_path, header):
    path = tmp_path / "unnamed.csv"
    path.write_text(f"{header}\n1,2,3\n4,5,6\n7,8,9\n")
    target = tmp_path / "m.mixtorch"
    message = _error(capsys, "fit", path, "-k", 1, "--header", "-o", target)
    assert f"the header of {path} leaves column 1 (counting from 0) without a name" in message
    assert "--drop 1" in message
    assert _run(capsys, "fit", path, "-k", 1, "--header", "--drop", 1, "-o", target)[0] == 0
    assert list(mixtorch.load(target).feature_names_in_) == ["a", "c"]


@pytest.mark.parametrize(
    ("names", "message"),
    [(["a", "a"], "'a' more than once"), (["a", ""], "column 1 (counting from 0)")],
)
def test_parquet_names_are_each_given_once(capsys, tmp_path, blobs, names, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "names.parquet"
    columns = [pa.array(blobs[:, 0]), pa.array(blobs[:, 1])]
    pq.write_table(pa.Table.from_arrays(columns, names=names), path)
    target = tmp_path / "m.mixtorch"
    assert message in _error(capsys, "fit", path, "-k", 1, "-o", target)
    assert _run(capsys, "fit", path, "-k", 1, "--columns", 0, "-o", target)[0] == 0


@pytest.mark.parametrize("option", ["--drop", "--columns"])
def test_a_name_two_columns_share_is_refused_as_a_choice(capsys, tmp_path, blobs, option):
    # taking the first of two columns named "a" would fit other data than asked for
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = tmp_path / "twice.csv"
    csv.write_text("a,a,b\n" + "".join(f"{x},{x + 1},{y}\n" for x, y in blobs))
    parquet = tmp_path / "twice.parquet"
    columns = [pa.array(blobs[:, 0]), pa.array(blobs[:, 0] + 1), pa.array(blobs[:, 1])]
    pq.write_table(pa.Table.from_arrays(columns, names=["a", "a", "b"]), parquet)
    target = tmp_path / "m.mixtorch"
    for path in (csv, parquet):
        message = _error(capsys, "fit", path, "-k", 1, option, "a", "-o", target)
        assert f"{path} has 2 columns named 'a' (positions 0, 1, counting from 0)" in message
        assert message.endswith("choose by position instead of by that name.")
        assert not target.exists()
        assert _run(capsys, "fit", path, "-k", 1, "--drop", 1, "-o", target)[0] == 0
        assert list(mixtorch.load(target).feature_names_in_) == ["a", "b"]
        target.unlink()


# -- messages say what to do -----------------------------------------------------------
def test_a_text_parquet_column_can_be_dropped(capsys, tmp_path, blobs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "city.parquet"
    pq.write_table(pa.table({"city": ["Paris"] * len(blobs), "a": blobs[:, 0]}), path)
    target = tmp_path / "m.mixtorch"
    message = _error(capsys, "fit", path, "-k", 1, "-o", target)
    assert "column 'city' is not numeric" in message and "--drop city" in message
    assert _run(capsys, "fit", path, "-k", 1, "--drop", "city", "-o", target)[0] == 0
    assert list(mixtorch.load(target).feature_names_in_) == ["a"]


def _save_npy(values):
    def write(path):
        with path.open("wb") as handle:  # np.save(path) would add .npy to a bare name
            np.save(handle, values)

    return write


@pytest.mark.parametrize(
    ("name", "make", "options", "advice"),
    [
        ("missing.csv", None, [], "check the name, or give a .csv, .npy or .parquet file"),
        ("empty.csv", "", [], "give a table of numbers"),
        ("names.csv", "a,b\n", ["--header"], "give a table with at least one row"),
        ("cube.npy", _save_npy(np.zeros((2, 3, 4))), [], "save a table of rows and columns"),
        ("complex.npy", _save_npy(np.zeros((3, 2), complex)), [], "save a table of numbers"),
        (
            "two.npy",
            _save_npy(np.zeros((3, 2))),
            ["--columns", 5],
            "position counting from 0 (0 to 1)",
        ),
        ("two.npy", _save_npy(np.zeros((3, 2))), ["--columns", 0, "--drop", 0], "keep at least"),
        ("ab.csv", "a,b\n1,2\n", ["--columns", "c"], "give a column's name or its position"),
        ("ab.csv", "a,b\n1,2\n", ["--drop", "a,b"], "keep at least one"),
        ("bad.parquet", "PAR1 damaged", [], "write it again"),
        ("no_ending", _save_npy(np.zeros(3)), [], "renaming it"),
    ],
)
def test_data_errors_say_what_to_do(capsys, tmp_path, name, make, options, advice):
    path = tmp_path / name
    if isinstance(make, str):
        path.write_text(make)
    elif make is not None:
        make(path)
    message = _error(capsys, "fit", path, "-k", 1, *options, "-o", tmp_path / "m.mixtorch")
    assert str(path) in message and advice in message


# -- further careless inputs -----------------------------------------------------------
def test_an_unreadable_data_file_says_so(capsys, folder, monkeypatch):
    import mixtorch._cli_checks

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mixtorch._cli_checks, "open", refuse, raising=False)
    path = folder / "data.csv"
    message = _error(capsys, "fit", path, "-k", 1, "-o", folder / "m.mixtorch")
    assert f"cannot read {path} (Permission denied); check its permissions" in message


def test_a_model_path_that_is_a_device_is_named_as_such(capsys):
    message = _error(capsys, "info", "/dev/null")
    assert "/dev/null is not a regular file" in message and "No model file" not in message


def test_a_huge_components_range_is_refused_at_once(capsys, folder):
    message = _error(
        capsys, "select", folder / "data.csv", "--components", "1-99999999999999999999"
    )
    assert "asks for 99999999999999999999 candidates; give at most 10000" in message
