"""What a database error means for a caller: the 503 body and the readiness message."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

NOT_MIGRATED = "database schema is not migrated to the expected revision"

# SQLSTATE 42P01 undefined_table, 42703 undefined_column (PostgreSQL); SQLite says it in words.
_MISSING_SCHEMA = ("42P01", "42703")


def describe(exc: SQLAlchemyError) -> str:
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
        if state in _MISSING_SCHEMA or "no such table" in str(exc.orig):
            return NOT_MIGRATED
    return "database unavailable"
