"""Reads not keyed by a client, on every database of a Sessions (one, or every shard).

Lookups by task or email id ask each database in turn (an id names one row across
shards); workspace-wide lists take the first offset+limit rows of each database in id
order and merge them (sharding/merge.py), so a page is in one stable order across shards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..refusals import Refused
from ..sharding.merge import Fetch, Key, merge_pages
from .sessions import Sessions

T = TypeVar("T")


def first_found(sessions: Sessions, read: Callable[[Session], T]) -> T:
    """`read` on each database until one does not answer 404; that 404 otherwise."""
    missing: Refused | None = None
    for open_session in sessions.everywhere():
        with open_session() as s:
            try:
                return read(s)
            except Refused as exc:
                if exc.status != 404:
                    raise
                missing = exc
    assert missing is not None
    raise missing


def merged_page(
    sessions: Sessions,
    query: Select[Any],
    id_column: Any,
    convert: Callable[[Any], T],
    key: Callable[[T], int],
    limit: int,
    offset: int,
) -> tuple[list[T], int]:
    """Rows `offset`..`offset+limit` of `query` in id order across the databases, and the total."""

    def on(open_session: Callable[[], Any]) -> Fetch[T]:
        def fetch(after: Key | None, n: int) -> Sequence[T]:
            with open_session() as s:
                stmt = query.order_by(id_column).limit(n)
                if after is not None:
                    stmt = stmt.where(id_column > after[0])
                return [convert(row) for row in s.scalars(stmt)]

        return fetch

    opens = sessions.everywhere()
    page = merge_pages(
        {str(i): on(o) for i, o in enumerate(opens)}, lambda r: (key(r),), offset + limit, None
    )
    total = 0
    for open_session in opens:
        with open_session() as s:
            total += s.scalar(select(func.count()).select_from(query.subquery())) or 0
    return page.items[offset:], total
