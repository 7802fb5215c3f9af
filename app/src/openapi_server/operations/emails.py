"""Accepting an email to send (idempotency, suppression, quota) and reading its status.

Enqueueing is the caller's: only once `accept` has committed the row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import ACTIVE, QUEUED, SUPPRESSED, EmailMessage, Suppression, WorkspaceUnsubscribe, utcnow
from ..models import EmailAccepted, EmailSendRequest, EmailStatus
from ..quota import take_send
from ..refusals import fail, not_found
from . import clients


def request_hash(body: EmailSendRequest) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_reused() -> NoReturn:
    fail(
        422,
        ["header", "Idempotency-Key"],
        "this key was already used with a different request body",
        "idempotency_key_reused",
    )


def _replay(
    s: Session, workspace_id: int, key: str, request_hash: str
) -> tuple[EmailAccepted, bool] | None:
    existing = s.scalars(
        select(EmailMessage).where(
            EmailMessage.workspace_id == workspace_id,
            EmailMessage.idempotency_key == key,
        )
    ).first()
    if existing is None:
        return None
    if existing.request_hash != request_hash:
        key_reused()
    return EmailAccepted(id=existing.id, status=existing.status), True  # type: ignore[arg-type]


def accept(
    s: Session,
    workspace_id: int,
    body: EmailSendRequest,
    idempotency_key: str | None,
    daily_send_quota: int,
    stage: Callable[[Session, EmailMessage], None] = lambda _s, _m: None,
    message_id: int | None = None,
    global_session: Session | None = None,
) -> tuple[EmailAccepted, bool]:
    """The committed message and whether it replays an earlier request with the same key.

    `stage` runs inside the message's transaction, before the commit: the queue's chance
    to write with it (the Kafka outbox row), so an accepted message is never lost between
    the database and the queue.

    With shards, `global_session` is the directory's: suppressions, unsubscribes and the
    daily quota are global, so they are read and counted there (committed first: a send
    that then fails on its shard has used one send of the quota, never sent one too many).
    """
    g = global_session or s
    digest = request_hash(body)
    now = utcnow()
    if idempotency_key is not None:
        replay = _replay(s, workspace_id, idempotency_key, digest)
        if replay is not None:
            return replay
    client = clients.find(s, workspace_id, body.client_id, ["body", "client_id"])
    suppressed = (
        client.status != ACTIVE
        or g.get(Suppression, client.email_key) is not None
        or g.get(WorkspaceUnsubscribe, (client.workspace_id, client.email_key)) is not None
    )
    if not suppressed:  # a suppressed message costs no sending, so no quota
        take_send(g, client.workspace_id, daily_send_quota, now)
        if g is not s:
            g.commit()
    msg = EmailMessage(
        id=message_id,
        workspace_id=client.workspace_id,
        client_id=client.id,
        to_address=client.email,
        subject=body.subject,
        body=body.body,
        status=SUPPRESSED if suppressed else QUEUED,
        attempts=0,
        idempotency_key=idempotency_key,
        request_hash=digest,
        last_error=f"suppressed: {client.status}" if suppressed else None,
        needs_reconciliation=False,
        enqueued_at=now,
        created_at=now,
        updated_at=now,
    )
    s.add(msg)
    try:
        if msg.status == QUEUED:
            stage(s, msg)
        s.commit()
    except IntegrityError:
        s.rollback()
        if idempotency_key is not None:
            # A concurrent request with the same key committed first.
            replay = _replay(s, workspace_id, idempotency_key, digest)
            if replay is not None:
                return replay
        not_found(["body", "client_id"], "client", body.client_id)
    return EmailAccepted(id=msg.id, status=msg.status), False  # type: ignore[arg-type]


def status(s: Session, workspace_id: int, email_id: int) -> EmailStatus:
    msg = s.scalars(
        select(EmailMessage).where(
            EmailMessage.id == email_id, EmailMessage.workspace_id == workspace_id
        )
    ).first()
    if msg is None:
        not_found(["path", "email_id"], "email", email_id)
    return EmailStatus.model_validate(msg)
