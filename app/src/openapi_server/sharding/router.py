"""Route a client's reads and writes to its shard; global data to the directory.

Hand-rolled rather than SQLAlchemy's ShardedSession: every request path knows its
client, so it needs one session on one shard, and the few reads that span shards go
through an explicit scatter-gather (merge.py) instead of concatenated results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings, default_directory_url
from ..db import Database, Workspace
from .buckets import MOVING, ShardMap, bucket_of, shard_name
from .directory import IdAllocator, load_shard_map


class BucketMoving(RuntimeError):
    """The client's bucket is being moved to another shard: writes wait for the switch.

    Retryable: the edge answers 503 with Retry-After, gRPC with UNAVAILABLE.
    """

    retryable = True

    def __init__(self, client_id: int, bucket: int, retry_after_s: float) -> None:
        super().__init__(
            f"client {client_id}: bucket {bucket} is moving between shards; retry in "
            f"{retry_after_s:g} s"
        )
        self.client_id = client_id
        self.bucket = bucket
        self.retry_after_s = retry_after_s


class ShardRouter:
    def __init__(
        self,
        shards: Mapping[str, Database],
        directory: Database,
        map_ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not shards:
            raise ValueError("a router needs at least one shard")
        self._shards = dict(shards)
        self._directory = directory
        self._map_ttl_s = map_ttl_s
        self._clock = clock
        self._map: ShardMap | None = None
        self._map_loaded_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> ShardRouter:
        """One Database per DB_SHARD_n (named "1", "2", ...) and one for the directory."""
        if not settings.db_shards:
            raise ValueError("sharding needs DB_SHARD_1 (and DB_SHARD_2, ...)")
        shards = {
            shard_name(i): Database(settings.with_(database_url=url, database_read_url=None))
            for i, url in enumerate(settings.db_shards, start=1)
        }
        directory_url = settings.db_directory_url or default_directory_url(settings.db_shards[0])
        directory = Database(settings.with_(database_url=directory_url, database_read_url=None))
        return cls(shards, directory, settings.shard_map_ttl_s, clock)

    def shards(self) -> dict[str, Database]:
        return dict(self._shards)

    @property
    def directory_database(self) -> Database:
        """The directory's Database (suppressions and unsubscribes the sender checks)."""
        return self._directory

    def shard_map(self) -> ShardMap:
        """The directory's map, re-read at most every SHARD_MAP_TTL_S seconds."""
        with self._lock:
            now = self._clock()
            if self._map is None or now - self._map_loaded_at >= self._map_ttl_s:
                with self._directory.session() as s:
                    self._map = load_shard_map(s, tuple(self._shards))
                self._map_loaded_at = now
            return self._map

    def shard_of(self, client_id: int) -> str:
        return self.shard_map().shard_for(client_id)

    @contextmanager
    def session_for(
        self, client_id: int, *, write: bool = True, one_statement: bool = False
    ) -> Iterator[Session]:
        """A session on the shard of `client_id`. A write to a bucket in state `moving`
        raises BucketMoving before anything is written; reads are served meanwhile.
        `one_statement`: each statement commits on its own (Database.statement_session)."""
        bucket = bucket_of(client_id)
        placement = self.shard_map().placement(bucket)
        if write and placement.state == MOVING:
            raise BucketMoving(client_id, bucket, max(self._map_ttl_s, 1.0))
        db = self._shards[placement.shard]
        with db.statement_session() if one_statement else db.session() as s:
            yield s

    # The seed's name for it.
    get_db_session = session_for

    def replicate_workspaces(self) -> int:
        """Copy workspaces from the directory (their home) to every shard that lacks them:
        a shard's clients, tasks and messages reference their workspace by foreign key.
        Run after creating a workspace, before its first client. Returns rows added."""
        with self._directory.session() as d:
            rows = [
                {"id": w.id, "name": w.name, "quota": w.daily_send_quota, "at": w.created_at}
                for w in d.scalars(select(Workspace))
            ]
        added = 0
        for db in self._shards.values():
            with db.session() as s:
                have = set(s.scalars(select(Workspace.id)))
                for row in rows:
                    if row["id"] not in have:
                        s.add(
                            Workspace(
                                id=row["id"],
                                name=row["name"],
                                daily_send_quota=row["quota"],
                                created_at=row["at"],
                            )
                        )
                        added += 1
                s.commit()
        return added

    @contextmanager
    def directory(self) -> Iterator[Session]:
        with self._directory.session() as s:
            yield s

    def allocate_ids(self, n: int = 1) -> list[int]:
        """New ids, unique across every shard, from the directory's sequence."""
        with self._directory.primary.begin() as conn:
            return IdAllocator.allocate(conn, n)

    def dispose(self) -> None:
        for db in self._shards.values():
            db.dispose()
        self._directory.dispose()
