"""Lists that span shards: per-shard keyset pages merged in key order.

Each shard returns its next rows after the cursor in ascending key order; the merge
takes the smallest `limit` of them. The cursor is the key of the last row returned, so
a page never repeats a row and, with unique keys that grow as rows are inserted (ids
from the directory's allocator), never skips one: rows inserted while a client pages
appear after the cursor, on whichever shard they land. Offsets cannot give that across
shards (each shard's offset shifts independently).
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from .router import ShardRouter

R = TypeVar("R")
Key = tuple[int, ...]

# fetch(after, limit): at most `limit` rows whose key is greater than `after` (None: from the
# start), in ascending key order.
Fetch = Callable[[Key | None, int], Sequence[R]]

MAX_CURSOR_CHARS = 200


@dataclass(frozen=True)
class Page(Generic[R]):
    items: list[R]
    # Key of the last item when more rows follow; None on the last page.
    after: Key | None

    @property
    def cursor(self) -> str | None:
        return encode_cursor(self.after) if self.after is not None else None


def merge_pages(
    fetchers: Mapping[str, Fetch[R]], key: Callable[[R], Key], limit: int, after: Key | None
) -> Page[R]:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    # One row more than the page from each shard tells whether another page follows.
    runs = [fetch(after, limit + 1) for fetch in fetchers.values()]
    merged = list(heapq.merge(*runs, key=key))
    items = merged[:limit]
    more = len(merged) > limit
    return Page(items, key(items[-1]) if more and items else None)


def shard_fetchers(
    router: ShardRouter, build: Callable[[Key | None, int], Select[Any]]
) -> dict[str, Fetch[R]]:
    """A fetch per shard that runs `build(after, limit)` (already filtered, ordered by the
    key, limited) on that shard's read session."""

    def on(shard: str) -> Fetch[R]:
        def fetch(after: Key | None, limit: int) -> Sequence[R]:
            with router.shards()[shard].read_session() as s:
                return _scalars(s, build(after, limit))

        return fetch

    return {name: on(name) for name in router.shards()}


def _scalars(session: Session, stmt: Select[Any]) -> list[Any]:
    return list(session.scalars(stmt))


def encode_cursor(after: Key) -> str:
    raw = json.dumps(list(after), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """The key a cursor carries; ValueError (a 400 at the edge) for anything else."""
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise ValueError("invalid cursor")
    try:
        value: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise ValueError("invalid cursor") from None
    if (
        not isinstance(value, list)
        or not value
        or not all(type(v) is int and 0 <= v < 2**63 for v in value)
    ):
        raise ValueError("invalid cursor")
    return tuple(value)
