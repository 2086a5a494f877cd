"""Print ``name==minimum`` for every dependency pyproject.toml declares with ``>=``.

``make test-min`` installs these into ``.venv-min`` to check that the declared minimums
are true. Extras named on the command line are included (default: plot, io, bayes).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

#: Pinned elsewhere on purpose: the CPU build installed before everything else.
SKIP = {"torch"}


def minimum_pins(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    pins = []
    for spec in specs:
        # ``name>=minimum`` optionally followed by an upper bound (``,<2``).
        match = re.fullmatch(
            r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)\s*(,\s*<\s*[0-9][^,;\s]*\s*)?", spec
        )
        if match is None:
            raise SystemExit(f"{spec!r} has no plain '>=' minimum; declare one")
        if match.group(1).lower() not in SKIP:
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print("\n".join(minimum_pins(root / "pyproject.toml", sys.argv[1:] or ["plot", "io"])))
