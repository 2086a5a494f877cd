"""``python -m mixtorch``: the same as the ``mixtorch`` command."""

from .cli import main

raise SystemExit(main())
