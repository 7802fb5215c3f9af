"""The transactional outbox: a send request and its Kafka record are committed together.

`stage()` adds the outbox row in the session that inserts the `email_messages` row, so
either both exist or neither does: a process that dies after the commit leaves a row the
relay publishes later, never an accepted request without a record. `stage_due()` is the
sweeper's half: retries whose backoff has passed and queued rows whose record went
missing get a new outbox row, in the transaction that marks them re-enqueued.

One outbox per database: with shards, every shard has its own table and relay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import propagate
from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.orm import Session

from ..db import QUEUED, EmailMessage, OutboxRecord, utcnow
from ..pipeline import flag_stuck

M = EmailMessage


def trace_carrier() -> str | None:
    """The current trace context as JSON headers (None without an active span or SDK)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier) if carrier else None


def stage(session: Session, message: EmailMessage) -> None:
    """Add the outbox row for `message` to the session's transaction (before its commit)."""
    if message.id is None:
        session.flush()  # the record names the message id
    session.add(
        OutboxRecord(
            message_id=message.id,
            client_id=message.client_id,
            headers=trace_carrier(),
            created_at=utcnow(),
        )
    )


@dataclass
class DueReport:
    flagged: int = 0
    staged: int = 0


def stage_due(
    conn: Connection,
    *,
    sending_timeout_s: float,
    requeue_after_s: float,
    now: datetime | None = None,
    limit: int = 1000,
) -> DueReport:
    """In the caller's transaction: flag stuck sends; stage records for due queued rows.

    Due means: a retry whose `next_attempt_at` has passed since it was scheduled
    (`enqueued_at < next_attempt_at`), or a queued row last enqueued longer ago than
    `requeue_after_s` (its record was lost, dead-lettered or given up on), unless an
    outbox row for it is still unpublished. Rows are
    locked with SKIP LOCKED, so concurrent sweepers take disjoint rows; a duplicate
    record would be harmless anyway (the claim), only wasteful.
    """
    now = now or utcnow()
    report = DueReport(flagged=flag_stuck(conn, now, sending_timeout_s))
    stale = now - timedelta(seconds=requeue_after_s)
    # A row still waiting in the outbox (Kafka unreachable) needs no second one.
    waiting = (
        select(OutboxRecord.id)
        .where(OutboxRecord.message_id == M.id, OutboxRecord.published_at.is_(None))
        .exists()
    )
    rows = conn.execute(
        select(M.id, M.client_id)
        .where(
            M.status == QUEUED,
            or_(M.next_attempt_at.is_(None), M.next_attempt_at <= now),
            or_(
                M.enqueued_at.is_(None),
                M.enqueued_at <= stale,
                M.enqueued_at < M.next_attempt_at,
            ),
            ~waiting,
        )
        .order_by(M.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        conn.execute(update(M).where(M.id.in_([r.id for r in rows])).values(enqueued_at=now))
        _insert(conn, [(r.id, r.client_id) for r in rows], now)
    report.staged = len(rows)
    return report


def _insert(conn: Connection, rows: list[tuple[int, int]], now: datetime) -> None:
    conn.execute(
        insert(OutboxRecord),
        [
            {"message_id": mid, "client_id": cid, "created_at": now, "attempts": 0}
            for mid, cid in rows
        ],
    )


def stage_ids(conn: Connection, message_ids: list[int]) -> int:
    """Outbox rows for these queued messages (a reconciliation requeue); how many staged."""
    rows = conn.execute(
        select(M.id, M.client_id).where(M.id.in_(message_ids), M.status == QUEUED)
    ).all()
    if rows:
        _insert(conn, [(r.id, r.client_id) for r in rows], utcnow())
    return len(rows)
