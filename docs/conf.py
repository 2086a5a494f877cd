"""Sphinx configuration for the mixtorch documentation (``make docs``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # _sphinx_helpers
sys.path.insert(0, str(HERE.parent / "src"))  # document the checkout, not an installed copy

from _docstring_checks import validate_docstring  # noqa: E402
from _sphinx_helpers import (  # noqa: E402
    escape_trailing_underscores,
    title_untitled_examples,
    write_api_pages,
)

import mixtorch  # noqa: E402

project = "mixtorch"
author = "the mixtorch developers"
copyright = "the mixtorch developers"  # noqa: A001
release = mixtorch.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
# MathJax from the site itself, not a CDN, when the pinned docs toolchain is installed
# (requirements-docs.txt): the extension copies MathJax 3 into _static/mathjax.
if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
    extensions.append("sphinx-mathjax-offline")

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_templates", "bench", "**/README.md"]
templates_path = ["_templates"]

# -- API reference: one page per public name, generated from each module's __all__ --------
write_api_pages(HERE / "api")
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # the numpydoc sections carry types and shapes
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- Markdown pages (benchmarks, distributed, references, changelog) ---------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# -- Gallery: examples/*.py run and their pictures are collected ------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # run every example, not only plot_*.py
    "reset_argv": "_sphinx_helpers.example_argv",
    "image_scrapers": ("_sphinx_helpers.png_scraper",),
    "reset_modules": ("matplotlib",),
    "min_reported_time": 1,
    "write_computation_times": False,  # its pages load DataTables and Bootstrap from CDNs
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "doc_module": ("mixtorch",),
    "backreferences_dir": "api/backreferences",
    "inspect_global_variables": False,
}

# -- HTML -------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mixtorch {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False


def _skip_member(app: object, what: str, name: str, obj: object, skip: bool, options: object):
    """Leave out what estimators inherit from scikit-learn (``get_params``,
    ``set_params``, metadata routing): it is scikit-learn's, documented there."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if str(getattr(obj, "__module__", "")).startswith("sklearn."):
        return True
    return None


def setup(app: object) -> None:
    app.connect("autodoc-skip-member", _skip_member)  # type: ignore[attr-defined]
    # Before numpydoc (priority 500) rewrites the sections.
    app.connect(  # type: ignore[attr-defined]
        "autodoc-process-docstring", escape_trailing_underscores, priority=400
    )
    # numpydoc validation of the docstrings in scope (see _docstring_checks.py).
    app.connect("autodoc-process-docstring", validate_docstring, priority=300)  # type: ignore[attr-defined]
    # After sphinx-gallery has written the example pages (same event, priority 500).
    app.connect("builder-inited", title_untitled_examples, priority=900)  # type: ignore[attr-defined]


# Keep examples and doctests quiet and reproducible on small machines.
os.environ.setdefault("MPLBACKEND", "Agg")
