"""The README as a newcomer reads it: its Python blocks run as written, warning-free, and
what they claim holds (the saved model loads back and scores as the original)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_readme_python_runs_as_written(tmp_path, monkeypatch):
    blocks = _python_blocks()
    assert blocks, "README.md has no ```python block"
    monkeypatch.chdir(tmp_path)  # the block saves a model file in the working directory
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a newcomer's first run should be quiet
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our README
    # what the quick start states
    X, gm, gm2 = namespace["X"], namespace["gm"], namespace["gm2"]
    np.testing.assert_array_equal(gm2.score_samples(X), gm.score_samples(X))
    assert (tmp_path / "model.mixtorch").is_file()
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    assert namespace["samples"].shape == (10, 2) and namespace["labels"].shape == (10,)
    assert type(namespace["gm_t"].means_).__name__ == "Tensor"
