"""The version is written once (src/mixtorch/_version.py) and read everywhere else."""

from __future__ import annotations

import re
from pathlib import Path

import mixtorch

ROOT = Path(__file__).parents[1]


def test_pyproject_reads_the_version_module():
    # (tomllib is Python 3.11+, and the package supports 3.10: plain text checks.)
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', text, re.MULTILINE)
    assert not re.search(r"^version = \"", text, re.MULTILINE)  # no literal version
    assert 'version = { attr = "mixtorch._version.__version__" }' in text


def test_version_is_pep440_and_exported():
    from mixtorch._version import __version__

    assert mixtorch.__version__ is __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", __version__)
    assert "__version__" in mixtorch.__all__


def test_changelog_and_license_exist():
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert "the mixtorch developers" in (ROOT / "LICENSE").read_text()
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()
