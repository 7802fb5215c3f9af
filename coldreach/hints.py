"""How printed hints spell commands, so that each one can be pasted into a shell as shown.

`coldreach` is a console script inside the project's virtualenv; typed bare it
is `command not found` unless that virtualenv is active. `uv run` finds it from
anywhere in the checkout once `make setup` has run.
"""

from __future__ import annotations

COLDREACH = "uv run coldreach"


def coldreach(arguments: str) -> str:
    """`uv run coldreach <arguments>`."""
    return f"{COLDREACH} {arguments}"
