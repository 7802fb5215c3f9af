"""Text checks shared by the request models.

PostgreSQL rejects NUL bytes and lone surrogates would fail to encode; both are
refused here as a 422 on the field instead of surfacing as a database error.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def single_line(value: str) -> str:
    """Names, titles, subjects: printable, one line (a subject ends up in a mail header)."""
    value = _encodable(value).strip()
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL.search(value) or _LINE_BREAK.search(value):
        raise ValueError("must be a single line without control characters")
    return value


def multi_line(value: str) -> str:
    """Bodies: any text except NUL and other control characters (tabs and newlines are fine)."""
    value = _encodable(value)
    if not value.strip():
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value
