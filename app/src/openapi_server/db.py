"""Tables, engines and sessions.

Two engines at most: the primary (every write, and every read of email status)
and an optional read replica used only by list endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from .config import Settings
from .rds_auth import RdsAuthToken, TokenSource


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Ids are 32-bit INTEGER columns: anything larger is refused before it reaches a query.
MAX_ID = 2**31 - 1

# Client status values. Anything but ACTIVE suppresses sending.
ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED = "active", "unsubscribed", "bounced", "complained"

# Email message status values.
QUEUED, SENDING, SENT, FAILED, SUPPRESSED = "queued", "sending", "sent", "failed", "suppressed"


class Workspace(Base):
    """One customer: every client, task, message and API key belongs to exactly one."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Overrides DAILY_SEND_QUOTA for this workspace when set.
    daily_send_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _workspace_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("workspaces.id"))


def _client_in_workspace(table: str) -> ForeignKeyConstraint:
    """A row's client must belong to the row's own workspace (enforced by the database)."""
    return ForeignKeyConstraint(
        ["workspace_id", "client_id"],
        ["clients.workspace_id", "clients.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_client_in_workspace",
    )


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        # Case-insensitive uniqueness of the address, per workspace.
        UniqueConstraint("workspace_id", "email_key", name="uq_clients_workspace_email_key"),
        # Target of the (workspace_id, client_id) foreign keys; also the list index.
        UniqueConstraint("workspace_id", "id", name="uq_clients_workspace_id_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased address.
    email_key: Mapped[str] = mapped_column(String(320))
    company: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_client_id", "client_id"),
        Index("ix_tasks_workspace_id_id", "workspace_id", "id"),
        _client_in_workspace("tasks"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    client_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EmailMessage(Base):
    __tablename__ = "email_messages"
    __table_args__ = (
        Index("ix_email_messages_status_claimed_at", "status", "claimed_at"),
        Index("ix_email_messages_client_id", "client_id"),
        UniqueConstraint(
            "workspace_id", "idempotency_key", name="uq_email_messages_workspace_idempotency_key"
        ),
        _client_in_workspace("email_messages"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    client_id: Mapped[int] = mapped_column(Integer)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    needs_reconciliation: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxRecord(Base):
    """QUEUE_BACKEND=kafka: a record to publish, committed with its message (kafka/outbox.py).

    `published_at` is set on the broker's delivery report; `lease_until`/`leased_by`
    belong to the relay that claimed the row.
    """

    __tablename__ = "kafka_outbox"
    __table_args__ = (
        Index(
            "ix_kafka_outbox_pending",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index("ix_kafka_outbox_published_at", "published_at"),
        Index("ix_kafka_outbox_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(ForeignKey("email_messages.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(Integer)
    # W3C trace context of the request that accepted the message (JSON object).
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    leased_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ApiKey(Base):
    """A program's credential. Only a hash of the secret part is stored (see apikeys.py)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # The visible part of the key (`crk_<public_id>_...`): how a key is found and named.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SendCount(Base):
    """Messages accepted for sending per workspace and UTC day: the daily send quota."""

    __tablename__ = "send_counts"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    count: Mapped[int] = mapped_column(Integer, default=0)


class WorkspaceUnsubscribe(Base):
    """Addresses that unsubscribed from one workspace's mail; kept if the client is deleted."""

    __tablename__ = "workspace_unsubscribes"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    email_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Suppression(Base):
    """Addresses no workspace may mail again (permanent bounces, complaints): they protect the
    shared sending domain. Kept even if the client row is deleted."""

    __tablename__ = "suppressions"

    email_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SnsNotification(Base):
    """SNS MessageIds already processed: makes the webhook idempotent per notification."""

    __tablename__ = "sns_notifications"

    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(50))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _authenticate_with_tokens(engine: Engine, tokens: TokenSource) -> None:
    """Every new connection gets a fresh IAM token as its password (never a cached one)."""

    @event.listens_for(engine, "do_connect")
    def _token(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["password"] = tokens(
            cparams["host"], int(cparams.get("port") or 5432), cparams["user"]
        )


def make_engine(url: URL, settings: Settings, tokens: TokenSource | None = None) -> Engine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "coldreach"},
    )
    if settings.db_iam_auth:
        _authenticate_with_tokens(engine, tokens or RdsAuthToken(settings.aws_region))
    return engine


class Database:
    """The primary engine, an optional replica engine, and a session factory for each."""

    def __init__(self, settings: Settings, token_source: TokenSource | None = None) -> None:
        if settings.db_iam_auth and token_source is None:
            token_source = RdsAuthToken(settings.aws_region)
        self.primary = make_engine(settings.database_url, settings, token_source)
        self.replica = (
            make_engine(settings.database_read_url, settings, token_source)
            if settings.database_read_url is not None
            else None
        )
        self._primary_sessions = sessionmaker(self.primary, expire_on_commit=False)
        self._read_sessions = (
            sessionmaker(self.replica, expire_on_commit=False) if self.replica else None
        )
        # The primary in autocommit (same pool): each statement is its own transaction.
        self.autocommit = self.primary.execution_options(isolation_level="AUTOCOMMIT")
        self._statement_sessions = sessionmaker(self.autocommit, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session on the primary: writes, and reads that must be current."""
        with self._primary_sessions() as s:
            yield s

    @contextmanager
    def statement_session(self) -> Iterator[Session]:
        """A session on the primary where each statement commits on its own: for work that
        is one statement (a lookup, one INSERT). It saves the BEGIN and the COMMIT or
        ROLLBACK round trips a transaction costs, and is as atomic for a single statement."""
        with self._statement_sessions() as s:
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session on the replica when one is configured (lists only; may lag)."""
        factory = self._read_sessions or self._primary_sessions
        with factory() as s:
            yield s

    def revision(self) -> str | None:
        """The primary's schema revision (None if never migrated); raises if it is down."""
        with self.primary.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self) -> None:
        self.primary.dispose()
        if self.replica is not None:
            self.replica.dispose()
