"""Errors the `coldreach` command prints without a traceback."""


class UserError(Exception):
    """Anything the user can fix (bad arguments, missing files, an unreachable endpoint)."""
