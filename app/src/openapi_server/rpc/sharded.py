"""The services' sessions on the ShardRouter (DB_SHARD_n set): rpc/sessions.py's Sessions.

A client's rows live on its shard (`session_for`); ids come from the directory's
allocator; a workspace's client addresses are unique through the directory's email
index; suppressions, unsubscribes and the daily quota are read and counted in the
directory (`global_session`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database, Workspace
from ..sharding import ShardRouter
from ..sharding.directory import ClientEmailIndex, IdempotencyKey
from .sessions import OneDatabase, Sessions


class ShardedSessions:
    draws_ids = True

    def __init__(self, router: ShardRouter) -> None:
        self.router = router
        self._replicated: set[tuple[str, int]] = set()

    def prepare_workspace(self, workspace_id: int, client_id: int) -> None:
        """Workspaces are made in the directory; a shard's rows reference theirs by foreign
        key, so copy them over before the workspace's first client on that shard."""
        shard = self.router.shard_of(client_id)
        if (shard, workspace_id) in self._replicated:
            return
        with self.router.shards()[shard].session() as s:
            present = s.get(Workspace, workspace_id) is not None
        if not present:
            self.router.replicate_workspaces()
        self._replicated.add((shard, workspace_id))

    def session_for(self, client_id: int) -> AbstractContextManager[Session]:
        return self.router.session_for(client_id)

    def one_statement_for(self, client_id: int) -> AbstractContextManager[Session]:
        return self.router.session_for(client_id, one_statement=True)

    def directory(self) -> AbstractContextManager[Session]:
        return self.router.directory()

    def reading(self, client_id: int) -> AbstractContextManager[Session]:
        return self.router.session_for(client_id, write=False, one_statement=True)

    def everywhere(self) -> list[Callable[[], AbstractContextManager[Session]]]:
        return [db.session for db in self.router.shards().values()]

    def new_id(self) -> int | None:
        return self.router.allocate_ids(1)[0]

    def claim_email(self, workspace_id: int, email_key: str, client_id: int) -> bool:
        """Reserve the address for this client; False if another client of the workspace
        holds it. Claimed before the shard write, released if that write fails."""
        with self.router.directory() as d:
            d.add(
                ClientEmailIndex(
                    workspace_id=workspace_id, email_key=email_key, client_id=client_id
                )
            )
            try:
                d.commit()
                return True
            except IntegrityError:
                d.rollback()
            holder = d.scalar(
                select(ClientEmailIndex.client_id).where(
                    ClientEmailIndex.workspace_id == workspace_id,
                    ClientEmailIndex.email_key == email_key,
                )
            )
            return holder == client_id

    def release_email(self, workspace_id: int, email_key: str, client_id: int) -> None:
        with self.router.directory() as d:
            d.execute(
                delete(ClientEmailIndex).where(
                    ClientEmailIndex.workspace_id == workspace_id,
                    ClientEmailIndex.email_key == email_key,
                    ClientEmailIndex.client_id == client_id,
                )
            )
            d.commit()

    def key_holder(self, workspace_id: int, key: str, client_id: int) -> int:
        """The client an idempotency key belongs to in the workspace, claiming it for this
        one if it is new: a key reused for a client on another shard is refused (422) as
        on one database, where the shard's own unique key cannot see it."""
        with self.router.directory() as d:
            d.add(
                IdempotencyKey(
                    workspace_id=workspace_id,
                    idempotency_key=key,
                    client_id=client_id,
                    message_id=0,
                )
            )
            try:
                d.commit()
                return client_id
            except IntegrityError:
                d.rollback()
            return int(
                d.scalar(
                    select(IdempotencyKey.client_id).where(
                        IdempotencyKey.workspace_id == workspace_id,
                        IdempotencyKey.idempotency_key == key,
                    )
                )
                or client_id
            )

    @contextmanager
    def global_session(self) -> Iterator[Session | None]:
        with self.router.directory() as d:
            yield d


def open_sessions(settings: Settings) -> tuple[Sessions, dict[str, Database], Callable[[], None]]:
    """The services' sessions, the databases that hold email rows (one outbox and relay
    each), and how to close them: the router's shards with DB_SHARD_n, else one database."""
    if settings.db_shards:
        router = ShardRouter.from_settings(settings)
        return ShardedSessions(router), router.shards(), router.dispose
    db = Database(settings)
    return OneDatabase(db), {"default": db}, db.dispose
