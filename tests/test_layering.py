"""The package's structure: no import cycles, no private estimator calls below the estimators."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "mixtorch"


def test_no_import_cycles():
    tool = ROOT / "tools" / "import_cycles.py"
    result = subprocess.run(
        [sys.executable, str(tool), str(PACKAGE)], capture_output=True, text=True, check=True
    )
    assert "cycles: none" in result.stdout, result.stdout


def test_lower_layers_never_call_private_estimator_methods():
    lower = [*PACKAGE.glob("fit/*.py"), *PACKAGE.glob("covariance/*.py"),
             *PACKAGE.glob("estep/*.py"),
             *(PACKAGE / name for name in ("stats.py", "mixture.py", "_mixture_checks.py",
             "distributed.py", "io.py", "nn.py", "_module.py", "conditioning.py",
             "sources.py", "_chunk_source.py", "_file_sources.py", "_mixture_parameters.py",
             "_mixture_sampling.py", "_mixture_conditioning.py", "_mixture_torch.py",
             "_mixture_scoring.py",
             "_torch_gaussians.py", "_sufficient_statistics.py", "_formats.py",
             "_load_checks.py", "_model_path.py", "_module_sampling.py",
             "_module_conversion.py"))]  # fmt: skip
    pattern = re.compile(r"\b(estimator|model)\._[a-z]")
    offenders = [
        f"{path.name}:{number}"
        for path in lower
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_submodules_are_not_hidden_by_functions_of_the_same_name():
    import importlib
    import inspect

    for name in ("kmeans",):
        module = importlib.import_module(f"mixtorch.fit.{name}")
        assert getattr(importlib.import_module("mixtorch.fit"), name) is module
        assert inspect.ismodule(module) and callable(module.kmeans) and callable(module.lloyd)


def test_the_readme_module_table_names_every_module():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("One job per module") :]
    unnamed = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
        and f"`{path.name}`" not in table
        and f"`{path.relative_to(PACKAGE)}`" not in table
    ]
    assert unnamed == [], f"add these to README.md's module table: {unnamed}"
