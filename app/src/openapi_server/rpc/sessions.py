"""Where the services' database sessions come from.

`session_for(client_id)` is the session of the database that holds the client's rows
(with sharding, the client's shard, refusing writes while its bucket moves; `reading`
serves reads meanwhile); `directory()` the one for global data. `reading` and
`one_statement_for` run each statement in its own implicit transaction: a call that is one
statement (GetClient's lookup, CreateTask's INSERT) then costs one round trip instead of
three (BEGIN, the statement, COMMIT or ROLLBACK). On one
database (phases 1-2 data, tests) both are sessions of that database. Calls not keyed by
a client (lookups by task or email id, workspace-wide lists) go to every database in
`everywhere()` (one here, every shard with sharding: rpc/sharded.py) and merge there.
`new_id()` is None here (the database numbers its rows); with shards it comes from the
directory's allocator, so an id names one row across all shards. `claim_email` and
`release_email` keep a workspace's client addresses unique where a per-database unique
index cannot (across shards); here that index does it and they do nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from sqlalchemy.orm import Session

from ..db import Database


class Sessions(Protocol):
    # Whether new_id() draws ids from a database (the directory) rather than returning None.
    draws_ids: bool

    def session_for(self, client_id: int) -> AbstractContextManager[Session]: ...
    def one_statement_for(self, client_id: int) -> AbstractContextManager[Session]: ...
    def directory(self) -> AbstractContextManager[Session]: ...
    def reading(self, client_id: int) -> AbstractContextManager[Session]: ...
    def everywhere(self) -> list[Callable[[], AbstractContextManager[Session]]]: ...
    def new_id(self) -> int | None: ...
    def claim_email(self, workspace_id: int, email_key: str, client_id: int) -> bool: ...
    def release_email(self, workspace_id: int, email_key: str, client_id: int) -> None: ...
    def global_session(self) -> AbstractContextManager[Session | None]: ...
    def prepare_workspace(self, workspace_id: int, client_id: int) -> None: ...
    def key_holder(self, workspace_id: int, key: str, client_id: int) -> int: ...


class OneDatabase:
    draws_ids = False

    def __init__(self, db: Database) -> None:
        self.db = db

    def session_for(self, client_id: int) -> AbstractContextManager[Session]:
        return self.db.session()

    def one_statement_for(self, client_id: int) -> AbstractContextManager[Session]:
        return self.db.statement_session()

    def directory(self) -> AbstractContextManager[Session]:
        return self.db.session()

    def reading(self, client_id: int) -> AbstractContextManager[Session]:
        return self.db.statement_session()

    def everywhere(self) -> list[Callable[[], AbstractContextManager[Session]]]:
        return [self.db.session]

    def new_id(self) -> int | None:
        return None

    def claim_email(self, workspace_id: int, email_key: str, client_id: int) -> bool:
        return True

    def release_email(self, workspace_id: int, email_key: str, client_id: int) -> None:
        return None

    def global_session(self) -> AbstractContextManager[Session | None]:
        """None: global data lives in the same database as the client's rows."""
        return nullcontext()

    def prepare_workspace(self, workspace_id: int, client_id: int) -> None:
        return None

    def key_holder(self, workspace_id: int, key: str, client_id: int) -> int:
        """The client an idempotency key belongs to: here the message table's own unique
        key decides, so always the caller's."""
        return client_id
