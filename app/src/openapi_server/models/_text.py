"""Text checks shared by the request models.

PostgreSQL rejects NUL bytes and lone surrogates would fail to encode; both are
refused here as a 422 on the field instead of surfacing as a database error.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")
# An RFC 2047 encoded-word: mail software decodes it, so in a subject it could spell
# out characters (line breaks) that the field itself refuses.
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bq]\?[^?\s]*\?=", re.IGNORECASE)


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def single_line(value: str) -> str:
    """Names, titles, subjects: printable, one line, no tabs (subjects go into a mail header)."""
    value = _encodable(value).strip()
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL.search(value) or _LINE_BREAK.search(value) or "\t" in value:
        raise ValueError("must be a single line without tabs or control characters")
    return value


def header_text(value: str) -> str:
    """A subject: a single line that does not spell RFC 2047 encoded-words."""
    value = single_line(value)
    if _ENCODED_WORD.search(value):
        raise ValueError("must not contain RFC 2047 encoded-words (=?charset?q?...?=)")
    return value


def multi_line(value: str) -> str:
    """Bodies: any text except NUL and other control characters (tabs and newlines are fine)."""
    value = _encodable(value)
    if not value.strip():
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value
