"""The command line with missing cells: ``fit --missing``, ``score``/``predict`` of rows
with missing cells, ``mixtorch impute`` and ``-o/--out`` on every command that writes a
file. Driven through ``main([...])`` as in test_cli.py; results are compared with the
library called directly and with float64 NumPy/SciPy references (the marginal density
of the observed cells, the conditional Gaussian mean, EM for one Gaussian)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import mixtorch
from mixtorch import GaussianMixture, GaussianMixtureImputer
from mixtorch._tables import read_data
from mixtorch.cli import build_parser, main

DOCS = Path(__file__).resolve().parents[1] / "docs"


# -- data and helpers ------------------------------------------------------------------
def _clusters(seed: int = 0) -> np.ndarray:
    """Two correlated 3-D clusters with about 12% of the cells missing, a row with every
    cell missing (row 3) and a row with two of three missing (row 10)."""
    rng = np.random.default_rng(seed)
    mix = np.array([[1.0, 0.8, 0.3], [0.0, 0.6, 0.4], [0.0, 0.0, 0.5]])
    X = np.concatenate(
        [rng.normal(size=(90, 3)) @ mix, rng.normal(size=(60, 3)) @ mix.T + [5.0, 1.0, 2.0]]
    )
    X[rng.random(X.shape) < 0.1] = np.nan
    X[3] = np.nan
    X[10, [0, 2]] = np.nan
    X[11] = [0.1, 0.2, 0.3]  # a complete row, to show it is written unchanged
    return X


def _write_csv(path: Path, X: np.ndarray, names: list[str] | None, marker: str = "") -> Path:
    """Each value in its exact shortest form, missing cells as ``marker``."""
    lines = [",".join(names)] if names else []
    for row in X.tolist():
        lines.append(",".join(marker if np.isnan(value) else repr(value) for value in row))
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _ok(capsys, *argv) -> tuple[str, str]:
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    return out, err


def _error(capsys, *argv) -> str:
    """The one stderr line of a refused command (exit code 2)."""
    code, _, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("mixtorch: error: ") or ": error: " in lines[0]
    return lines[0]


def _load(path: Path) -> GaussianMixture:
    """The model in ``path``, without the column names the command line gave it (the
    tests call it on plain arrays)."""
    model = mixtorch.load(path)
    if hasattr(model, "feature_names_in_"):
        del model.feature_names_in_
    return model


def _parameters(model: GaussianMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mixture = model.mixture_
    covariances = mixture.covariance.full_matrices(mixture.n_components)
    return (
        mixture.weights.double().numpy(),
        mixture.means.double().numpy(),
        covariances.double().numpy(),
    )


def _marginal_log_densities(model: GaussianMixture, X: np.ndarray) -> np.ndarray:
    """log p(x_observed) and the responsibilities of each row, by SciPy in float64 on the
    model's parameters: (n,), (n, K)."""
    weights, means, covariances = _parameters(model)
    joint = np.zeros((X.shape[0], weights.size))
    for i, row in enumerate(X):
        seen = ~np.isnan(row)
        for k in range(weights.size):
            density = 0.0
            if seen.any():
                density = multivariate_normal(
                    means[k, seen], covariances[k][np.ix_(seen, seen)]
                ).logpdf(row[seen])
            joint[i, k] = np.log(weights[k]) + density
    total = logsumexp(joint, axis=1)
    return total, np.exp(joint - total[:, None])


def _conditional_means(model: GaussianMixture, X: np.ndarray) -> np.ndarray:
    """X with each missing cell replaced by E[x_missing | x_observed], float64 NumPy:
    sum_k r_k(x_o) (mu_k,m + S_k,mo S_k,oo^-1 (x_o - mu_k,o)); the mean for a row with
    nothing observed."""
    weights, means, covariances = _parameters(model)
    _, responsibilities = _marginal_log_densities(model, X)
    filled = X.copy()
    for i, row in enumerate(X):
        seen, lost = ~np.isnan(row), np.isnan(row)
        if not lost.any():
            continue
        value = np.zeros(int(lost.sum()))
        for k in range(weights.size):
            S = covariances[k]
            shift = np.zeros(int(lost.sum()))
            if seen.any():
                gain = np.linalg.solve(S[np.ix_(seen, seen)], S[np.ix_(seen, lost)]).T
                shift = gain @ (row[seen] - means[k, seen])
            value += responsibilities[i, k] * (means[k, lost] + shift)
        filled[i, lost] = value
    return filled


def _em_one_gaussian(X: np.ndarray, reg: float, iterations: int = 2000) -> tuple:
    """Maximum-likelihood mean and covariance of one Gaussian from rows with missing
    entries (EM of Little and Rubin), float64 NumPy, ``reg`` added to the diagonal as
    mixtorch's M-step adds reg_covar."""
    n, d = X.shape
    mean = np.nanmean(X, axis=0)
    cov = np.diag(np.nanvar(X, axis=0)) + reg * np.eye(d)
    for _ in range(iterations):
        completed, extra = X.copy(), np.zeros((d, d))
        for i, row in enumerate(X):
            seen, lost = ~np.isnan(row), np.isnan(row)
            if not lost.any():
                continue
            if seen.any():
                gain = np.linalg.solve(cov[np.ix_(seen, seen)], cov[np.ix_(seen, lost)]).T
                completed[i, lost] = mean[lost] + gain @ (row[seen] - mean[seen])
                conditional = cov[np.ix_(lost, lost)] - gain @ cov[np.ix_(seen, lost)]
            else:
                completed[i] = mean
                conditional = cov
            extra[np.ix_(lost, lost)] += conditional
        new_mean = completed.mean(axis=0)
        centred = completed - new_mean
        new_cov = (centred.T @ centred + extra) / n + reg * np.eye(d)
        done = np.abs(new_mean - mean).max() < 1e-13 and np.abs(new_cov - cov).max() < 1e-13
        mean, cov = new_mean, new_cov
        if done:
            break
    return mean, cov


@pytest.fixture(scope="module")
def holes() -> np.ndarray:
    return _clusters()


@pytest.fixture
def files(tmp_path, holes):
    csv = _write_csv(tmp_path / "holes.csv", holes, ["a", "b", "c"])
    plain = _write_csv(tmp_path / "plain.csv", holes, None, marker="NA")
    npy = tmp_path / "holes.npy"
    np.save(npy, holes)
    return {"csv": csv, "plain": plain, "npy": npy, "dir": tmp_path}


@pytest.fixture
def model(capsys, files):
    path = files["dir"] / "holes.mixtorch"
    _ok(capsys, "fit", files["csv"], "-k", 2, "--missing", "--seed", 0, "-o", path)
    return path


# -- fit --missing ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["csv", "plain", "npy", "parquet"])
def test_fit_missing_matches_the_library_and_keeps_the_setting(capsys, files, holes, kind):
    if kind == "parquet":
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        columns = {
            name: pa.array([None if np.isnan(v) else v for v in holes[:, j]], pa.float64())
            for j, name in enumerate("abc")
        }
        files["parquet"] = files["dir"] / "holes.parquet"
        pq.write_table(pa.table(columns), files["parquet"])
    target = files["dir"] / f"{kind}.mixtorch"
    out, err = _ok(capsys, "fit", files[kind], "-k", 2, "--missing", "--seed", 0, "-o", target)
    reference = GaussianMixture(2, missing_values=np.nan, random_state=0).fit(holes)
    loaded = mixtorch.load(target)
    assert np.isnan(loaded.missing_values)
    for ours, theirs in zip(_parameters(loaded), _parameters(reference), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    expected = float(np.mean(reference.score_samples(holes)))
    assert float(out.split()[-1]) == pytest.approx(expected, rel=1e-5)
    assert f"with {int(np.isnan(holes).sum())} missing cells" in err


def test_fit_missing_one_gaussian_is_the_maximum_likelihood_estimate(capsys, files, holes):
    """Against EM for one Gaussian with missing entries, written in NumPy."""
    target = files["dir"] / "one.mixtorch"
    argv = ["-k", 1, "--missing", "--tol", 1e-12, "--max-iter", 5000, "-o", target]
    _ok(capsys, "fit", files["csv"], *argv)
    weights, means, covariances = _parameters(mixtorch.load(target))
    mean, cov = _em_one_gaussian(holes, reg=1e-6)
    np.testing.assert_allclose(weights, [1.0])
    np.testing.assert_allclose(means[0], mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(covariances[0], cov, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--model", "kde"], "--model kde fits complete rows only"),
        (["--model", "gaussian"], "--model gmm -k 1"),
        (["--model", "bayes", "-k", "2"], "--model bayes fits complete rows only"),
        (["-k", "2", "--algorithm", "gradient"], "fits by EM only"),
    ],
)
def test_fit_missing_is_refused_where_the_model_cannot_take_it(capsys, files, extra, words):
    message = _error(capsys, "fit", files["csv"], "--missing", *extra)
    assert "--missing" in message and words in message


def test_without_missing_the_error_names_the_flag(capsys, files):
    message = _error(capsys, "fit", files["csv"], "-k", 2, "-o", files["dir"] / "m.mixtorch")
    assert "line 2 of" in message and "column 'b'" in message and "pass --missing" in message
    message = _error(capsys, "fit", files["npy"], "-k", 2, "-o", files["dir"] / "m.mixtorch")
    assert "row 1, column 1" in message and "pass --missing" in message


@pytest.mark.parametrize("cell", ["inf", "-Infinity"])
def test_infinite_values_stay_errors_with_missing(capsys, files, holes, cell):
    text = files["csv"].read_text().splitlines()
    text[5] = f"{cell},1,2"
    files["csv"].write_text("\n".join(text) + "\n")
    message = _error(capsys, "fit", files["csv"], "-k", 2, "--missing")
    assert "line 6 of" in message and "never read as missing" in message
    values = holes.copy()
    values[4, 2] = np.inf
    np.save(files["npy"], values)
    message = _error(capsys, "fit", files["npy"], "-k", 2, "--missing")
    assert "row 5, column 2" in message and "never read as missing" in message


def test_a_column_with_no_observed_value_is_refused(capsys, files, holes):
    values = holes.copy()
    values[:, 1] = np.nan
    path = _write_csv(files["dir"] / "empty.csv", values, ["a", "b", "c"])
    message = _error(capsys, "fit", path, "-k", 2, "--missing")
    assert "'b'" in message and "--drop b" in message
    assert "--drop b" in _error(capsys, "impute", path, "-k", 2)
    assert "--drop b" in _error(capsys, "select", path, "--missing", "--components", "1-2")


def test_select_missing_matches_the_library(capsys, files, holes):
    best = files["dir"] / "best.mixtorch"
    out, _ = _ok(
        capsys, "select", files["csv"], "--missing", "--components", "1-3", "--covariance",
        "full,diag", "--seed", 0, "--format", "json", "-o", best,
    )  # fmt: skip
    from mixtorch.selection import select

    reference = select(
        holes, [1, 2, 3], ["full", "diag"], random_state=0, max_iter=100, missing_values=np.nan
    )
    assert f'"n_components": {reference.best_params_["n_components"]}' in out
    loaded = mixtorch.load(best)
    assert np.isnan(loaded.missing_values)
    np.testing.assert_allclose(loaded.means_, reference.best_estimator_.means_, rtol=1e-10)


# -- score, predict, info --------------------------------------------------------------
def test_score_and_predict_rows_with_missing_cells(capsys, files, holes, model):
    loaded = _load(model)
    reference, responsibilities = _marginal_log_densities(loaded, holes)
    out, _ = _ok(capsys, "score", model, files["csv"])
    assert float(out) == pytest.approx(reference.mean(), rel=1e-9)
    _ok(capsys, "score", model, files["plain"], "--per-sample", "-o", files["dir"] / "ld.csv")
    written = read_data(files["dir"] / "ld.csv").values[:, 0]
    np.testing.assert_allclose(written, reference, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(written, loaded.score_samples(holes), rtol=1e-9)
    assert written[3] == pytest.approx(0.0, abs=1e-9)  # nothing observed: probability one
    _ok(capsys, "predict", model, files["npy"], "--proba", "-o", files["dir"] / "p.npy")
    np.testing.assert_allclose(np.load(files["dir"] / "p.npy"), responsibilities, atol=1e-8)
    out, _ = _ok(capsys, "predict", model, files["csv"])
    labels = np.array(out.split()[1:], dtype=int)
    np.testing.assert_array_equal(labels, loaded.predict(holes))


def test_a_model_fitted_without_missing_refuses_missing_cells(capsys, files, holes):
    complete = files["dir"] / "complete.csv"
    _write_csv(complete, np.nan_to_num(holes, nan=0.5), ["a", "b", "c"])
    plain_model = files["dir"] / "complete.mixtorch"
    _ok(capsys, "fit", complete, "-k", 2, "--seed", 0, "-o", plain_model)
    for command in ("score", "predict"):
        message = _error(capsys, command, plain_model, files["csv"])
        assert f"the model in {plain_model} was fitted without --missing" in message
        assert f"cannot {command} rows" in message and "row 1, column 'b'" in message
        assert "mixtorch impute" in message


def test_info_reports_the_setting(capsys, model):
    out, _ = _ok(capsys, "info", model, "--format", "json")
    assert '"missing_values": "nan"' in out


# -- impute ----------------------------------------------------------------------------
def test_impute_with_a_model_gives_the_conditional_means(capsys, files, holes, model):
    target = files["dir"] / "filled.csv"
    _, err = _ok(capsys, "impute", model, files["csv"], "-o", target)
    table = read_data(target)
    assert table.names == ["a", "b", "c"]
    expected = _conditional_means(mixtorch.load(model), holes)
    np.testing.assert_allclose(table.values, expected, rtol=1e-9, atol=1e-10)
    seen = ~np.isnan(holes)
    assert np.array_equal(table.values[seen], holes[seen])  # to the last bit
    assert (target.read_text().splitlines()[12]) == "0.1,0.2,0.3"  # written as read
    count = int(np.isnan(holes).sum())
    empty = int(np.isnan(holes).all(axis=1).sum())
    assert f"filled {count} missing cell(s)" in err
    assert f"({empty} row(s) with every cell missing: the mixture's mean)" in err


def test_impute_one_gaussian_against_the_conditional_gaussian_mean(capsys, files, holes):
    """The 1-component case against mu_m + S_mo S_oo^-1 (x_o - mu_o) in float64 NumPy,
    on the model's own parameters; the empty row gets the mean."""
    one = files["dir"] / "one.mixtorch"
    _ok(capsys, "fit", files["npy"], "-k", 1, "--missing", "-o", one)
    _, means, covariances = _parameters(mixtorch.load(one))
    mu, S = means[0], covariances[0]
    out, _ = _ok(capsys, "impute", one, files["plain"])
    filled = np.loadtxt(out.splitlines(), delimiter=",")
    assert filled.shape == holes.shape  # no header in, no header out; no row dropped
    for row, result in zip(holes, filled, strict=True):
        seen, lost = ~np.isnan(row), np.isnan(row)
        if not seen.any():
            np.testing.assert_allclose(result, mu, rtol=1e-12)
        elif lost.any():
            gain = S[np.ix_(lost, seen)] @ np.linalg.inv(S[np.ix_(seen, seen)])
            expected = mu[lost] + gain @ (row[seen] - mu[seen])
            np.testing.assert_allclose(result[lost], expected, rtol=1e-9, atol=1e-11)
        assert np.array_equal(result[seen], row[seen])


def test_impute_without_a_model_is_the_library_imputer(capsys, files, holes):
    target = files["dir"] / "filled.npy"
    _, err = _ok(capsys, "impute", files["csv"], "-k", 2, "--seed", 0, "-o", target)
    reference = GaussianMixtureImputer(2, random_state=0).fit(holes)
    np.testing.assert_array_equal(np.load(target), reference.transform(holes))
    assert "GaussianMixtureImputer(n_components=2, random_state=0) fitted to" in err
    # the same as fitting with --missing and imputing with that model
    fitted = files["dir"] / "same.mixtorch"
    _ok(capsys, "fit", files["csv"], "-k", 2, "--seed", 0, "--missing", "-o", fitted)
    out, _ = _ok(capsys, "impute", fitted, files["npy"])
    np.testing.assert_allclose(
        np.loadtxt(out.splitlines(), delimiter=","), np.load(target), rtol=1e-12
    )
    mean = reference.mixture_model_.mixture_.center.numpy()
    np.testing.assert_allclose(np.load(target)[3], mean, rtol=1e-12)  # the empty row


def test_impute_keeps_the_data_column_order_and_reads_saved_imputers(capsys, files, holes):
    reordered = _write_csv(files["dir"] / "cab.csv", holes[:, [2, 0, 1]], ["c", "a", "b"])
    model = files["dir"] / "abc.mixtorch"
    _ok(capsys, "fit", files["csv"], "-k", 2, "--seed", 0, "--missing", "-o", model)
    out, _ = _ok(capsys, "impute", model, reordered)
    assert out.splitlines()[0] == "c,a,b"
    filled = np.loadtxt(out.splitlines()[1:], delimiter=",")
    expected = _conditional_means(mixtorch.load(model), holes)[:, [2, 0, 1]]
    np.testing.assert_allclose(filled, expected, rtol=1e-9, atol=1e-10)
    imputer = GaussianMixtureImputer(2, random_state=1).fit(holes)
    saved = mixtorch.save(imputer, files["dir"] / "imputer.mixtorch")
    out, _ = _ok(capsys, "impute", saved, files["npy"])
    np.testing.assert_allclose(
        np.loadtxt(out.splitlines(), delimiter=","), imputer.transform(holes), rtol=1e-12
    )


def test_impute_refusals(capsys, files, holes, model):
    message = _error(capsys, "impute", model, files["csv"], "-k", 2)
    assert "-k/--components" in message and "leave MODEL out" in message
    assert "input file" in _error(capsys, "impute", model, files["csv"], "-o", files["csv"])
    from mixtorch import GaussianMixtureRegressor

    complete = np.nan_to_num(holes)
    regressor = GaussianMixtureRegressor(1).fit(complete[:, :2], complete[:, 2])
    saved = mixtorch.save(regressor, files["dir"] / "reg.mixtorch")
    message = _error(capsys, "impute", saved, files["dir"] / "plain.csv", "--columns", "0,1")
    assert "GaussianMixtureRegressor" in message and "leave MODEL out" in message
    assert "unknown output format" in _error(capsys, "impute", model, files["csv"], "-o", "x.tx")


def test_plot_refuses_data_with_missing_cells(capsys, files, holes):
    pytest.importorskip("matplotlib")
    two = _write_csv(files["dir"] / "two.csv", holes[:, :2], ["a", "b"])
    model = files["dir"] / "two.mixtorch"
    _ok(capsys, "fit", two, "-k", 2, "--missing", "--seed", 0, "-o", model)
    message = _error(capsys, "plot", model, two, "-o", files["dir"] / "two.png")
    assert "draws complete rows only" in message and "mixtorch impute" in message


# -- -o/--out everywhere ---------------------------------------------------------------
def test_every_command_that_writes_takes_o_listed_alike(capsys, files, model):
    for command in ("fit", "score", "predict", "sample", "plot", "select", "impute", "demo"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert re.search(r"^  -o (FILE|FOLDER), --out (FILE|FOLDER)\s", text, re.M), command
    assert build_parser().parse_args(["demo", "-o", "there"]).out == "there"
    sampled = files["dir"] / "s.csv"
    _ok(capsys, "sample", model, "-n", 5, "--seed", 0, "-o", sampled)
    assert read_data(sampled).shape == (5, 3)
    pytest.importorskip("matplotlib")
    two = _write_csv(files["dir"] / "two.csv", np.random.default_rng(1).normal(size=(40, 2)), None)
    small = files["dir"] / "small.mixtorch"
    _ok(capsys, "fit", two, "-k", 1, "-o", small)
    picture = files["dir"] / "x.png"
    _ok(capsys, "plot", small, "-o", picture)
    assert picture.read_bytes()[:4] == b"\x89PNG"


# -- the user guide's session ----------------------------------------------------------
def test_the_user_guide_missing_values_session_runs(capsys, tmp_path, monkeypatch, holes):
    text = (DOCS / "user_guide" / "cli.rst").read_text()
    block = text.split(".. code-block:: shell\n\n", 1)[1].split("\n\n", 1)[0]
    commands = [shlex.split(line, comments=True) for line in block.splitlines()]
    _write_csv(tmp_path / "holes.csv", holes, ["a", "b", "c"])
    monkeypatch.chdir(tmp_path)
    for command in commands:
        assert command[0] == "mixtorch"
        assert main(command[1:]) == 0, (command, capsys.readouterr().err)
    filled = read_data(tmp_path / "filled.csv").values
    assert not np.isnan(filled).any() and filled.shape == holes.shape
    np.testing.assert_allclose(read_data(tmp_path / "refilled.csv").values, filled, rtol=1e-9)
