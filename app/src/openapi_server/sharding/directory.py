"""The directory database: data that must not depend on which shard a client lands on.

It holds the app's global tables under the main schema (workspaces, API keys, send counts,
workspace unsubscribes, suppressions, SNS notifications: the same models as phases 1-2, so
the code that reads them runs unchanged on a directory session) and, in a metadata of its
own with its own Alembic chain (`sharding/migrations`, version table
`alembic_version_directory`), the tables only a sharded deployment needs: the bucket map,
the per-workspace client email index, idempotency keys, the global id allocator and the
migration's per-bucket checks. Shards never carry these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Connection, Integer, MetaData, String, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .. import migrate
from ..config import Settings
from ..config import default_directory_url as default_directory_url  # its old home
from ..db import NAMING, UTCDateTime, utcnow
from .buckets import ACTIVE, Placement, ShardMap

VERSION_TABLE = "alembic_version_directory"

# Ids handed out by the allocator stay below 2**53: JavaScript clients read them exactly.
MAX_GLOBAL_ID = 2**53 - 1
ID_SEQUENCE = "global_ids"


class DirectoryBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class BucketMapRow(DirectoryBase):
    """Where a bucket lives. Buckets without a row follow the default map (even/odd)."""

    __tablename__ = "bucket_map"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    shard: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClientEmailIndex(DirectoryBase):
    """A workspace's client addresses: the uniqueness a per-shard index cannot enforce."""

    __tablename__ = "client_email_index"

    workspace_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(DirectoryBase):
    """A send request's idempotency key, per workspace, and the message it created."""

    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class BucketCheck(DirectoryBase):
    """What `migrate-shards` verified for one bucket and table before switching the bucket."""

    __tablename__ = "shard_bucket_checks"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    table_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    shard: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def load_shard_map(session: Session, shard_names: tuple[str, ...]) -> ShardMap:
    rows = session.scalars(select(BucketMapRow))
    return ShardMap(shard_names, {r.bucket: Placement(r.shard, r.state) for r in rows})


def place_bucket(session: Session, bucket: int, shard: str, state: str = ACTIVE) -> None:
    """Record where a bucket lives (the caller commits)."""
    row = session.get(BucketMapRow, bucket)
    if row is None:
        session.add(BucketMapRow(bucket=bucket, shard=shard, state=state))
    else:
        row.shard, row.state, row.updated_at = shard, state, utcnow()
    session.flush()


def upgrade_directory(url: URL, settings: Settings | None = None) -> None:
    """The directory's schema: the app's tables (global ones are used) and its own."""
    base = settings or Settings(database_url=url, auto_migrate=False)
    migrate.upgrade_directory(base.with_(database_url=url, database_read_url=None))


class IdAllocator:
    """Ids for new rows on any shard, from one sequence in the directory.

    PostgreSQL: a BIGINT sequence (MAXVALUE 2**53-1; `nextval` is never rolled back, so ids
    may have gaps but never repeat). SQLite (embedded local default): a one-row counter.
    """

    # Never hand out `used` or anything below it. Written for psycopg (`%(used)s`) so that
    # the migration, which speaks psycopg directly, runs the same statement.
    ENSURE_ABOVE_PG = (
        f"SELECT setval('{ID_SEQUENCE}', GREATEST(%(used)s, "
        f"(SELECT last_value FROM {ID_SEQUENCE}), 1))"
    )

    @staticmethod
    def allocate(conn: Connection, n: int = 1) -> list[int]:
        if n < 1:
            raise ValueError("allocate at least one id")
        if conn.dialect.name == "postgresql":
            rows = conn.execute(
                text(f"SELECT nextval('{ID_SEQUENCE}') FROM generate_series(1, :n)"), {"n": n}
            )
            return [int(r[0]) for r in rows]
        last = conn.execute(
            text(
                f"UPDATE {ID_SEQUENCE} SET last_value = last_value + :n "
                "WHERE last_value + :n <= :max RETURNING last_value"
            ),
            {"n": n, "max": MAX_GLOBAL_ID},
        ).scalar_one_or_none()
        if last is None:
            raise OverflowError("the global id allocator is exhausted")
        return list(range(int(last) - n + 1, int(last) + 1))

    @staticmethod
    def ensure_above(conn: Connection, used: int) -> int:
        """Never hand out `used` or anything below it (ids copied from phase 2); the next id."""
        if conn.dialect.name == "postgresql":
            value = conn.exec_driver_sql(IdAllocator.ENSURE_ABOVE_PG, {"used": used}).scalar_one()
            return int(value) + 1
        conn.execute(
            text(f"UPDATE {ID_SEQUENCE} SET last_value = MAX(last_value, :used)"), {"used": used}
        )
        return int(conn.execute(text(f"SELECT last_value FROM {ID_SEQUENCE}")).scalar_one()) + 1
