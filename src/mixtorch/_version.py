"""The version of mixtorch: the one place it is written.

``pyproject.toml`` reads it for the package metadata and ``mixtorch.__version__``
re-exports it.
"""

__version__ = "0.1.0"
