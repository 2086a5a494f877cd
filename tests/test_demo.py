"""The digits demo: it writes its pictures and report, and its samples look like digits."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

import mixtorch  # noqa: E402
from mixtorch.cli import main  # noqa: E402
from mixtorch.demo import run_demo  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), n_components=(1, 4, 8), n_samples=200)


def test_files_and_report(demo):
    for name in ("samples", "real", "bic"):
        assert demo.files[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = demo.files["report"].read_text()
    for name in ("samples", "real", "bic"):
        assert f"]({demo.files[name].name})" in report
    assert "K = 8" in report or "K = 4" in report
    summary = demo.summary()
    assert "components" in summary and str(demo.files["samples"]) in summary


def test_bic_choice_and_saved_model(demo):
    table = demo.selection.table
    best = min(table, key=lambda row: row["bic"])
    assert demo.selection.best_params_["n_components"] == best["n_components"] > 1
    model = mixtorch.load(demo.files["model"])
    assert model.n_components == best["n_components"]
    assert model.n_features_in_ == demo.n_pca
    assert demo.log_likelihood == pytest.approx(best["log_likelihood"])


def test_samples_look_like_digits(demo):
    """A nearest-neighbour classifier of the real digits recognises the sampled ones confidently,
    much more so than draws from a single Gaussian fitted the same way."""
    digits = load_digits()
    classifier = KNeighborsClassifier(10).fit(digits.data / 16, digits.target)
    pca = PCA(n_components=demo.n_pca, random_state=0).fit(digits.data)
    model = mixtorch.load(demo.files["model"]).set_params(random_state=1)
    sampled = np.clip(pca.inverse_transform(model.sample(300)[0]), 0, 16)
    single = mixtorch.Gaussian(random_state=1).fit(pca.transform(digits.data))
    blurred = np.clip(pca.inverse_transform(single.sample(300)), 0, 16)
    confidence = classifier.predict_proba(sampled / 16).max(1).mean()
    baseline = classifier.predict_proba(blurred / 16).max(1).mean()
    real = classifier.predict_proba(digits.data[:300] / 16).max(1).mean()
    # Measured: about 0.90 for the mixture, 0.76 for one Gaussian, 0.97 for real digits.
    assert confidence > 0.82
    assert confidence > baseline + 0.07
    assert real > confidence
    # Several digit classes appear, not one mode repeated.
    assert len(set(classifier.predict(sampled / 16))) >= 8


def test_cli_demo(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--components", "2,6", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "chosen by BIC: 6 components" in out
    assert (tmp_path / "digits_samples.png").is_file()
    assert (tmp_path / "report.md").is_file()


@pytest.mark.parametrize(
    ("script", "pictures"),
    [
        ("generative_story.py", ["generative_story.png"]),
        ("parameter_guesses.py", ["parameter_guesses.png"]),
        ("kde_bandwidth.py", ["kde_bandwidth.png", "kde_loo_curve.png"]),
    ],
)
def test_examples_run(tmp_path, capsys, script, pictures):
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / script
    runpy.run_path(str(path))["main"](tmp_path)
    assert "picture:" in capsys.readouterr().out
    for name in pictures:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
