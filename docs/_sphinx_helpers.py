"""Build helpers for the documentation: API pages from ``__all__`` and the gallery's
pictures.

The examples write their pictures to the folder given as their first argument (the same
scripts run from the command line and in ``tests/test_demo.py``). The gallery runs each
one with its own folder under ``docs/_build`` and shows the PNG files it wrote there.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXAMPLE_OUTPUT = HERE / "_build" / "example-output"

#: Module -> title of its API page, in the order of the reference index.
API_MODULES = {
    "mixtorch": "Estimators, value objects and functions (``mixtorch``)",
    "mixtorch.nn": "Differentiable modules (``mixtorch.nn``)",
    "mixtorch.bayes": "Pyro models and estimators (``mixtorch.bayes``)",
    "mixtorch.sources": "Data sources for out-of-core fitting (``mixtorch.sources``)",
    "mixtorch.conditioning": "Marginals and conditionals (``mixtorch.conditioning``)",
    "mixtorch.selection": "Model selection (``mixtorch.selection``)",
    "mixtorch.io": "Saving and loading (``mixtorch.io``)",
    "mixtorch.plotting": "Plots (``mixtorch.plotting``)",
    "mixtorch.fit": "Fitting algorithms as functions (``mixtorch.fit``)",
    "mixtorch.fit.kmeans": "k-means and its seeding (``mixtorch.fit.kmeans``)",
    "mixtorch.fit.variational": "Variational Bayes (``mixtorch.fit.variational``)",
    "mixtorch.fit.streaming": "Streaming fits (``mixtorch.fit.streaming``)",
    "mixtorch.fit.stepwise": "Mini-batch (stepwise) EM (``mixtorch.fit.stepwise``)",
    "mixtorch.fit.bandwidth": "KDE bandwidths (``mixtorch.fit.bandwidth``)",
}

#: Modules whose names the pages after them do not repeat.
_DOCUMENTED_ABOVE = ("mixtorch", "mixtorch.fit")

_SKIP = {"__version__"}

#: Example name -> pictures already shown (an example may have several code blocks).
_SHOWN: dict[str, set[str]] = {}


def _public_names(module_name: str, exported_above: set[int]) -> tuple[list[str], list[str]]:
    """Names in ``module.__all__`` not already documented under ``mixtorch``: the
    callables (classes and functions) and the constants, each sorted."""
    module = importlib.import_module(module_name)
    callables, constants = [], []
    for name in module.__all__:
        value = getattr(module, name)
        if name in _SKIP or id(value) in exported_above:
            continue
        (callables if callable(value) else constants).append(name)
    return sorted(callables, key=str.lower), sorted(constants)


def _page(module_name: str, title: str, exported_above: set[int]) -> str:
    callables, constants = _public_names(module_name, exported_above)
    lines = [title, "=" * len(title), "", f".. automodule:: {module_name}", "   :no-members:", ""]
    lines += [f".. currentmodule:: {module_name}", ""]
    if callables:
        lines += [".. autosummary::", "   :toctree: generated/", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in callables] + [""]
    for name in constants:
        lines += [f".. autodata:: {name}", "   :no-value:", ""]
    return "\n".join(lines)


def write_api_pages(folder: Path) -> None:
    """Write ``api/<module>.rst`` for every module of :data:`API_MODULES` and an index.

    Names exported by ``mixtorch`` (and ``mixtorch.fit``) are documented there once; the
    modules after them list only what they add.
    """
    folder.mkdir(exist_ok=True)
    exported_above: set[int] = set()
    toctree = []
    for module_name, title in API_MODULES.items():
        text = _page(module_name, title, exported_above)
        path = folder / f"{module_name}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        toctree.append(f"   {module_name}")
        if module_name in _DOCUMENTED_ABOVE:
            module = importlib.import_module(module_name)
            exported_above |= {id(getattr(module, name)) for name in module.__all__}
    index = [
        "API reference",
        "=============",
        "",
        "Every public class and function, one page each, generated from the docstrings.",
        "Estimators follow scikit-learn's conventions (``fit`` returns the estimator,",
        "fitted attributes end in ``_``); NumPy input gives NumPy output and torch tensors",
        "stay tensors on their device. Estimators also have scikit-learn's ``get_params``",
        "and ``set_params``.",
        "",
        ".. toctree::",
        "   :maxdepth: 2",
        "",
        *toctree,
        "",
    ]
    index_path = folder / "index.rst"
    if not index_path.exists() or index_path.read_text() != "\n".join(index):
        index_path.write_text("\n".join(index))


def example_argv(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """The examples' first argument: their own output folder under ``docs/_build``."""
    folder = EXAMPLE_OUTPUT / Path(script_vars["src_file"]).stem
    shutil.rmtree(folder, ignore_errors=True)
    _SHOWN[folder.name] = set()
    folder.mkdir(parents=True)
    return [str(folder)]


def png_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """Show the PNG files an example wrote (in the order written) and close its figures."""
    import matplotlib.pyplot as plt
    from sphinx_gallery.scrapers import figure_rst

    plt.close("all")
    folder = EXAMPLE_OUTPUT / Path(block_vars["src_file"]).stem
    shown = _SHOWN.setdefault(folder.name, set())
    written = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime)
    new = [p for p in written if p.name not in shown]
    targets = []
    for picture, target in zip(new, block_vars["image_path_iterator"], strict=False):
        shutil.copyfile(picture, target)
        shown.add(picture.name)
        targets.append(target)
    return figure_rst(targets, gallery_conf["src_dir"])


# -- docstring and gallery robustness -------------------------------------------------
_SPAN = re.compile(r"(``.*?``|`[^`]*`)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w\\])([A-Za-z]\w*?[A-Za-z0-9])_(?![\w`])")


def escape_trailing_underscores(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Escape ``name_`` outside code so reST does not read it as a link target.

    Fitted attributes end in an underscore (``means_``), and a docstring line such as
    ``weights_ : array of shape (n_samples_fit_,)`` would otherwise be a reference to an
    undefined target. Doctest blocks, literal blocks and inline literals are left alone.
    """
    literal_indent: int | None = None
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                continue
            literal_indent = None
        if stripped.startswith((">>>", "...")) or _in_doctest(lines, index):
            continue
        parts = _SPAN.split(line)
        lines[index] = "".join(
            part if part.startswith("`") else _TRAILING_UNDERSCORE.sub(r"\1\\_", part)
            for part in parts
        )
        if stripped.endswith("::"):
            literal_indent = indent


def _in_doctest(lines: list[str], index: int) -> bool:
    """Whether line ``index`` is the output of a doctest (after ``>>>``, before a blank)."""
    for previous in range(index - 1, -1, -1):
        text = lines[previous].strip()
        if not text:
            return False
        if text.startswith((">>>", "...")):
            return True
    return False


_LABEL = re.compile(r"^\.\. _sphx_glr_.*:$")


def title_untitled_examples(app: Any) -> None:
    """Give a section title to gallery pages whose docstring starts with a plain sentence.

    sphinx-gallery takes an example's first docstring line as its title, but the page
    itself has none unless the line is underlined; add the underline so that links and
    the table of contents work for every example, however its docstring is written.
    """
    folder = Path(app.srcdir) / "auto_examples"
    for page in folder.glob("*.rst"):
        lines = page.read_text().split("\n")
        for index, line in enumerate(lines):
            if not _LABEL.match(line):
                continue
            title = next(i for i in range(index + 1, len(lines)) if lines[i].strip())
            following = lines[title + 1] if title + 1 < len(lines) else ""
            if not following.strip() or set(following.strip()) != {"="}:
                lines[title] = lines[title].rstrip().rstrip(".")
                lines.insert(title + 1, "=" * len(lines[title]))
                page.write_text("\n".join(lines))
            break
