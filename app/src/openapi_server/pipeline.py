"""The email pipeline: claim, check suppression, send once, record the outcome.

Every state change is one conditional UPDATE on the primary, so any number of
workers (threads, processes, Celery redeliveries) may be handed the same message
id: exactly one wins the `queued -> sending` claim and calls the mailer. The
database connection is released before the mailer is called, so a slow provider
never holds a pool slot.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from copy import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from opentelemetry import trace
from sqlalchemy import Connection, Row, or_, select, update

from .addresses import email_key
from .config import Settings
from .db import (
    ACTIVE,
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    SUPPRESSED,
    UNSUBSCRIBED,
    Client,
    Database,
    EmailMessage,
    Suppression,
    WorkspaceUnsubscribe,
    utcnow,
)
from .mailer import Mailer, OutgoingEmail, PermanentMailerError, TransientMailerError
from .unsubscribe import make_token, unsubscribe_headers

log = logging.getLogger(__name__)
# A no-op until an SDK provider is installed (tracing.py); the send is a child of whatever
# span runs it (the Kafka consumer's, a Celery task's).
tracer = trace.get_tracer(__name__)

M = EmailMessage


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # back to queued with a delay
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    RECONCILE = "reconcile"  # outcome unknown: left in `sending`, flagged
    SKIPPED = "skipped"  # someone else owns it, or it is already final
    NOT_DUE = "not_due"  # queued for a retry that is not due yet


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    delay_s: float = 0.0

    @property
    def requeue_in_s(self) -> float | None:
        """Seconds after which the queue should hand the id back, or None if it is done with."""
        if self.outcome in (Outcome.RETRY, Outcome.NOT_DUE):
            return max(self.delay_s, 0.01)
        return None


@dataclass
class SweepReport:
    flagged: int = 0
    requeue: list[int] = field(default_factory=list)


def _stop_reason(client: Row[str, str, str, bool] | None) -> str | None:
    """Why a claimed message must not go out (client gone, suppressed, unsubscribed), or None."""
    if client is None:
        return "gone"
    if client.reason is not None:
        return client.reason
    if client.unsubscribed:
        return UNSUBSCRIBED
    return None if client.status == ACTIVE else client.status


def default_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def backoff_s(settings: Settings, attempts: int) -> float:
    """Exponential backoff with full jitter, capped."""
    cap = min(settings.retry_backoff_max_s, settings.retry_backoff_base_s * 2 ** (attempts - 1))
    return random.uniform(cap / 2, cap) if cap > 0 else 0.0


Transaction = Callable[[], AbstractContextManager[Connection]]


def flag_stuck(conn: Connection, now: datetime, sending_timeout_s: float) -> int:
    """Flag `sending` rows claimed longer ago than the timeout: maybe sent, never resent."""
    return conn.execute(
        update(M)
        .where(
            M.status == SENDING,
            M.needs_reconciliation.is_(False),
            M.claimed_at < now - timedelta(seconds=sending_timeout_s),
        )
        .values(
            needs_reconciliation=True,
            last_error="stuck in sending past the timeout; not resent",
            updated_at=now,
        )
    ).rowcount


def _global_checks(workspace_id: int, key: str) -> tuple[Any, Any]:
    """A suppression of the address (its reason, or NULL) and whether the recipient left
    this workspace's mail, as column expressions of one SELECT."""
    suppression = select(Suppression.reason).where(Suppression.email_key == key)
    unsubscribed = select(WorkspaceUnsubscribe.email_key).where(
        WorkspaceUnsubscribe.workspace_id == workspace_id,
        WorkspaceUnsubscribe.email_key == key,
    )
    return suppression.scalar_subquery().label("reason"), unsubscribed.exists().label(
        "unsubscribed"
    )


def global_stop_reason(conn: Connection, workspace_id: int, key: str) -> str | None:
    """A suppression of the address, or an unsubscribe from this workspace, in `conn`'s
    database (the directory of a sharded deployment): one round trip."""
    reason, unsubscribed = conn.execute(select(*_global_checks(workspace_id, key))).one()
    if reason is not None:
        return reason
    return UNSUBSCRIBED if unsubscribed else None


class Pipeline:
    """Sends messages of one database, or, `bound` to a shard, of that shard.

    With shards, suppressions and workspace unsubscribes live in the directory: pass it as
    `directory` and every claim also checks there (a bounce or an unsubscribe recorded
    after the message was accepted stops it). A directory that cannot be read undoes the
    claim: the error reaches the caller as a database outage would, nothing is sent.
    """

    def __init__(
        self,
        db: Database,
        mailer: Mailer,
        settings: Settings,
        worker_id: str | None = None,
        *,
        directory: Database | None = None,
    ) -> None:
        self.db = db
        self.mailer = mailer
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self._begin: Transaction = db.primary.begin
        # Recording an outcome is one UPDATE: in autocommit it needs no BEGIN and COMMIT
        # round trips of its own, and is just as atomic.
        self._statement: Transaction = db.autocommit.connect
        # A single read: autocommit spares it a BEGIN and a ROLLBACK round trip.
        self._directory: Transaction | None = directory.autocommit.connect if directory else None

    def bound(self, begin: Transaction, statement: Transaction | None = None) -> Pipeline:
        """The same pipeline on another database (a shard): `begin()` opens a transaction
        there, `statement()` (default: `begin`) a connection for one autocommitted UPDATE."""
        other = copy(self)
        other._begin = begin
        other._statement = statement or begin
        return other

    # -- one message -------------------------------------------------------------------

    def process(self, message_id: int) -> Result:
        with tracer.start_as_current_span(
            "email send", attributes={"coldreach.message_id": message_id}
        ) as span:
            result = self._process(message_id)
            span.set_attribute("coldreach.outcome", result.outcome.value)
            return result

    def _process(self, message_id: int) -> Result:
        now = utcnow()
        # Unique per claim, not per process: a late answer from an earlier claim of the
        # same message (by another thread here) can never overwrite a newer claim's result.
        claim = f"{self.worker_id}/{uuid.uuid4().hex[:12]}"
        with self._begin() as conn:
            claimed = conn.execute(
                update(M)
                .where(
                    M.id == message_id,
                    M.status == QUEUED,
                    or_(M.next_attempt_at.is_(None), M.next_attempt_at <= now),
                )
                .values(
                    status=SENDING,
                    claimed_at=now,
                    claimed_by=claim,
                    attempts=M.attempts + 1,
                    updated_at=now,
                )
                .returning(M.workspace_id, M.client_id, M.to_address, M.subject, M.body, M.attempts)
            )
            msg = claimed.first()
            if msg is None:
                row = conn.execute(
                    select(M.status, M.next_attempt_at).where(M.id == message_id)
                ).first()
                if row is not None and row.status == QUEUED and row.next_attempt_at is not None:
                    return Result(Outcome.NOT_DUE, (row.next_attempt_at - now).total_seconds())
                return Result(Outcome.SKIPPED)
            # One round trip for the client's status, any suppression of the address and
            # an unsubscribe from this message's workspace.
            try:
                key = email_key(msg.to_address)
            except ValueError:  # a row stored before addresses were checked; SES refuses it
                key = msg.to_address.lower()
            client = conn.execute(
                select(
                    Client.status, Client.email_key, *_global_checks(msg.workspace_id, key)
                ).where(Client.id == msg.client_id, Client.workspace_id == msg.workspace_id)
            ).first()
            reason = _stop_reason(client)
            if reason is None and self._directory is not None:
                # Inside the claim's transaction: if the directory is down this raises and
                # the claim is rolled back (the message stays queued for a later delivery).
                with self._directory() as directory:
                    reason = global_stop_reason(directory, msg.workspace_id, key)
            if client is None or reason is not None:
                conn.execute(
                    update(M)
                    .where(M.id == message_id, M.status == SENDING)
                    .values(status=SUPPRESSED, last_error=f"suppressed: {reason}", updated_at=now)
                )
                return Result(Outcome.SUPPRESSED)

        token = make_token(
            self.settings.unsubscribe_secret,
            msg.client_id,
            client.email_key,
            self.settings.unsubscribe_ttl_days * 86400,
        )
        headers = unsubscribe_headers(self.settings.public_base_url, token)
        unsubscribe_url = headers["List-Unsubscribe"].strip("<>")
        body = f"{msg.body}\n\n--\nTo stop receiving these emails: {unsubscribe_url}\n"
        email = OutgoingEmail(message_id, msg.to_address, msg.subject, body, headers)
        try:
            provider_id = self.mailer.send(email)
        except TransientMailerError as exc:
            if msg.attempts >= self.settings.max_attempts:
                self._finish(message_id, claim, status=FAILED, last_error=f"gave up: {exc}"[:2000])
                return Result(Outcome.FAILED)
            delay = backoff_s(self.settings, msg.attempts)
            due = utcnow() + timedelta(seconds=delay)
            self._finish(
                message_id,
                claim,
                status=QUEUED,
                last_error=str(exc)[:2000],
                next_attempt_at=due,
                enqueued_at=utcnow(),
                claimed_by=None,
            )
            return Result(Outcome.RETRY, delay)
        except PermanentMailerError as exc:
            self._finish(message_id, claim, status=FAILED, last_error=str(exc)[:2000])
            return Result(Outcome.FAILED)
        except Exception as exc:
            log.exception("mailer outcome unknown for message %s; flagged", message_id)
            self._finish(
                message_id,
                claim,
                status=SENDING,
                needs_reconciliation=True,
                last_error=f"outcome unknown: {type(exc).__name__}: {exc}"[:2000],
            )
            return Result(Outcome.RECONCILE)
        self._finish(
            message_id,
            claim,
            status=SENT,
            provider_message_id=provider_id,
            sent_at=utcnow(),
            last_error=None,
            needs_reconciliation=False,
        )
        return Result(Outcome.SENT)

    def _finish(self, message_id: int, claim: str, **values: object) -> None:
        """Record the result of our own claim; retried briefly if the database blips."""
        values["updated_at"] = utcnow()
        for attempt in range(5):
            try:
                with self._statement() as conn:
                    conn.execute(
                        update(M)
                        .where(
                            M.id == message_id,
                            M.status == SENDING,
                            M.claimed_by == claim,
                        )
                        .values(**values)
                    )
                return
            except Exception:
                if attempt == 4:
                    # The row stays in `sending`; the sweeper flags it for reconciliation.
                    log.exception("could not record the outcome of message %s", message_id)
                    return
                time.sleep(0.2 * 2**attempt)

    # -- housekeeping ------------------------------------------------------------------

    def sweep(
        self, now: datetime | None = None, requeue_after_s: float | None = None
    ) -> SweepReport:
        """Flag stuck `sending` rows; list `queued` rows whose queue entry may be lost.

        A row in `sending` past the timeout may or may not have left: it is flagged,
        never resent. A `queued` row that is due and was last enqueued long ago is
        returned so the caller enqueues it again; a duplicate queue entry is harmless
        because only one claim can win.
        """
        now = now or utcnow()
        report = SweepReport()
        age = self.settings.requeue_after_s if requeue_after_s is None else requeue_after_s
        requeue_before = now - timedelta(seconds=age)
        with self._begin() as conn:
            report.flagged = flag_stuck(conn, now, self.settings.sending_timeout_s)
            ids = list(
                conn.execute(
                    select(M.id)
                    .where(
                        M.status == QUEUED,
                        or_(M.next_attempt_at.is_(None), M.next_attempt_at <= now),
                        or_(M.enqueued_at.is_(None), M.enqueued_at <= requeue_before),
                    )
                    .order_by(M.id)
                    .limit(1000)
                    # Concurrent sweepers (one per worker task) take disjoint rows.
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if ids:
                conn.execute(update(M).where(M.id.in_(ids)).values(enqueued_at=now))
            report.requeue = ids
        if report.flagged:
            log.warning("%d message(s) stuck in sending flagged for reconciliation", report.flagged)
        return report
