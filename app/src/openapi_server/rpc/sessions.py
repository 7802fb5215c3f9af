"""Where the services' database sessions come from.

`session_for(client_id)` is the session of the database that holds the client's rows
(with sharding, the client's shard); `directory()` the one for global data. On one
database (phases 1-2 data, tests) both are sessions of that database. Calls not keyed by
a client (lookups by task or email id, workspace-wide lists, creating a client, whose id
is not known yet) use `directory()` here; the sharded router answers those by asking
every shard.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session

from ..db import Database


class Sessions(Protocol):
    def session_for(self, client_id: int) -> AbstractContextManager[Session]: ...
    def directory(self) -> AbstractContextManager[Session]: ...


class OneDatabase:
    def __init__(self, db: Database) -> None:
        self.db = db

    def session_for(self, client_id: int) -> AbstractContextManager[Session]:
        return self.db.session()

    def directory(self) -> AbstractContextManager[Session]:
        return self.db.session()
