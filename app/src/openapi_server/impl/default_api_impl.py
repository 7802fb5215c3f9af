"""The implementation of every operation (kept apart from the routes, as the generator expects)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any, NoReturn

from fastapi import HTTPException
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..addresses import email_key
from ..apis.default_api_base import BaseDefaultApi
from ..database_errors import NOT_MIGRATED
from ..db import (
    ACTIVE,
    BOUNCED,
    COMPLAINED,
    QUEUED,
    SUPPRESSED,
    UNSUBSCRIBED,
    Client,
    EmailMessage,
    SnsNotification,
    Suppression,
    Task,
    WorkspaceUnsubscribe,
    utcnow,
)
from ..models import (
    Client as ClientOut,
)
from ..models import (
    ClientCreate,
    ClientList,
    ClientUpdate,
    EmailAccepted,
    EmailSendRequest,
    EmailStatus,
    TaskCreate,
    TaskList,
    TaskUpdate,
    UnsubscribeResult,
    WebhookResult,
)
from ..models import (
    Task as TaskOut,
)
from ..quota import take_send
from ..sns import SnsVerificationError, check_fresh, is_sns_url
from ..unsubscribe import TokenError, parse_token, verify_token

log = logging.getLogger(__name__)


def fail(status: int, loc: Sequence[str | int], msg: str, kind: str) -> NoReturn:
    detail = [{"loc": list(loc), "msg": msg, "type": kind}]
    raise HTTPException(status_code=status, detail=detail)


def _commit_client(s: Session) -> None:
    """Commit a new or changed client: the unique email_key turns a taken address into a 409."""
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        fail(409, ["body", "email"], "a client with this email already exists", "conflict")


def _request_hash(body: EmailSendRequest) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class DefaultApiImpl(BaseDefaultApi):
    # -- clients -----------------------------------------------------------------------

    def _client(self, s: Session, client_id: int, loc: list[str | int]) -> Client:
        """The caller's client; another workspace's is as absent as one that never existed."""
        client = s.scalars(
            select(Client).where(Client.id == client_id, Client.workspace_id == self.workspace_id)
        ).first()
        if client is None:
            fail(404, loc, f"client {client_id} not found", "not_found")
        return client

    def create_client(self, body: ClientCreate) -> ClientOut:
        now = utcnow()
        client = Client(
            workspace_id=self.workspace_id,
            name=body.name,
            email=str(body.email),
            email_key=email_key(str(body.email)),
            company=body.company,
            status=ACTIVE,
            created_at=now,
            updated_at=now,
        )
        with self.ctx.db.session() as s:
            s.add(client)
            _commit_client(s)
            return ClientOut.model_validate(client)

    def list_clients(self, limit: int, offset: int) -> ClientList:
        mine = Client.workspace_id == self.workspace_id
        with self.ctx.db.read_session() as s:
            total = s.scalar(select(func.count()).select_from(Client).where(mine)) or 0
            rows = s.scalars(
                select(Client).where(mine).order_by(Client.id).limit(limit).offset(offset)
            )
            items = [ClientOut.model_validate(c) for c in rows]
        return ClientList(items=items, total=total, limit=limit, offset=offset)

    def get_client(self, client_id: int) -> ClientOut:
        with self.ctx.db.session() as s:
            return ClientOut.model_validate(self._client(s, client_id, ["path", "client_id"]))

    def update_client(self, client_id: int, body: ClientUpdate) -> ClientOut:
        changes = body.model_dump(exclude_unset=True)
        with self.ctx.db.session() as s:
            client = self._client(s, client_id, ["path", "client_id"])
            if "name" in changes:
                client.name = changes["name"]
            if "company" in changes:
                client.company = changes["company"]
            if "email" in changes:
                client.email = str(changes["email"])
                client.email_key = email_key(client.email)
            client.updated_at = utcnow()
            _commit_client(s)
            return ClientOut.model_validate(client)

    def delete_client(self, client_id: int) -> None:
        with self.ctx.db.session() as s:
            client = self._client(s, client_id, ["path", "client_id"])
            s.delete(client)
            s.commit()

    # -- tasks -------------------------------------------------------------------------

    def create_task(self, body: TaskCreate) -> TaskOut:
        now = utcnow()
        with self.ctx.db.session() as s:
            client = self._client(s, body.client_id, ["body", "client_id"])
            task = Task(
                workspace_id=client.workspace_id,
                client_id=client.id,
                title=body.title,
                due_at=body.due_at,
                done=False,
                created_at=now,
                updated_at=now,
            )
            s.add(task)
            try:
                s.commit()
            except IntegrityError:  # the client was deleted in between
                s.rollback()
                fail(404, ["body", "client_id"], f"client {body.client_id} not found", "not_found")
            return TaskOut.model_validate(task)

    def list_tasks(self, client_id: int | None, limit: int, offset: int) -> TaskList:
        query = select(Task).where(Task.workspace_id == self.workspace_id)
        count = select(func.count()).select_from(Task).where(Task.workspace_id == self.workspace_id)
        if client_id is not None:
            query = query.where(Task.client_id == client_id)
            count = count.where(Task.client_id == client_id)
        with self.ctx.db.read_session() as s:
            total = s.scalar(count) or 0
            rows = s.scalars(query.order_by(Task.id).limit(limit).offset(offset))
            items = [TaskOut.model_validate(t) for t in rows]
        return TaskList(items=items, total=total, limit=limit, offset=offset)

    def _task(self, s: Session, task_id: int) -> Task:
        task = s.scalars(
            select(Task).where(Task.id == task_id, Task.workspace_id == self.workspace_id)
        ).first()
        if task is None:
            fail(404, ["path", "task_id"], f"task {task_id} not found", "not_found")
        return task

    def get_task(self, task_id: int) -> TaskOut:
        with self.ctx.db.session() as s:
            return TaskOut.model_validate(self._task(s, task_id))

    def update_task(self, task_id: int, body: TaskUpdate) -> TaskOut:
        changes = body.model_dump(exclude_unset=True)
        with self.ctx.db.session() as s:
            task = self._task(s, task_id)
            for name in ("title", "due_at", "done"):
                if name in changes:
                    setattr(task, name, changes[name])
            task.updated_at = utcnow()
            s.commit()
            return TaskOut.model_validate(task)

    # -- email -------------------------------------------------------------------------

    def _replay(self, s: Session, key: str, request_hash: str) -> tuple[EmailAccepted, bool] | None:
        existing = s.scalars(
            select(EmailMessage).where(
                EmailMessage.workspace_id == self.workspace_id,
                EmailMessage.idempotency_key == key,
            )
        ).first()
        if existing is None:
            return None
        if existing.request_hash != request_hash:
            fail(
                422,
                ["header", "Idempotency-Key"],
                "this key was already used with a different request body",
                "idempotency_key_reused",
            )
        return EmailAccepted(id=existing.id, status=existing.status), True  # type: ignore[arg-type]

    def send_email(
        self, body: EmailSendRequest, idempotency_key: str | None
    ) -> tuple[EmailAccepted, bool]:
        request_hash = _request_hash(body)
        now = utcnow()
        with self.ctx.db.session() as s:
            if idempotency_key is not None:
                replay = self._replay(s, idempotency_key, request_hash)
                if replay is not None:
                    return replay
            client = self._client(s, body.client_id, ["body", "client_id"])
            suppressed = (
                client.status != ACTIVE
                or s.get(Suppression, client.email_key) is not None
                or s.get(WorkspaceUnsubscribe, (client.workspace_id, client.email_key)) is not None
            )
            if not suppressed:  # a suppressed message costs no sending, so no quota
                take_send(s, client.workspace_id, self.ctx.settings.daily_send_quota, now)
            msg = EmailMessage(
                workspace_id=client.workspace_id,
                client_id=client.id,
                to_address=client.email,
                subject=body.subject,
                body=body.body,
                status=SUPPRESSED if suppressed else QUEUED,
                attempts=0,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                last_error=f"suppressed: {client.status}" if suppressed else None,
                needs_reconciliation=False,
                enqueued_at=now,
                created_at=now,
                updated_at=now,
            )
            s.add(msg)
            try:
                if msg.status == QUEUED:
                    self.ctx.queue.stage(s, msg)  # e.g. the Kafka outbox row, same transaction
                s.commit()
            except IntegrityError:
                s.rollback()
                if idempotency_key is not None:
                    # A concurrent request with the same key committed first.
                    replay = self._replay(s, idempotency_key, request_hash)
                    if replay is not None:
                        return replay
                fail(404, ["body", "client_id"], f"client {body.client_id} not found", "not_found")
            accepted = EmailAccepted(id=msg.id, status=msg.status)  # type: ignore[arg-type]
        # Enqueue only once the row is committed. If the broker is down the row stays
        # queued and the sweeper enqueues it later.
        if accepted.status == QUEUED:
            try:
                self.ctx.queue.enqueue(accepted.id)
            except Exception:
                log.exception("enqueue of message %s failed; the sweeper will retry", accepted.id)
        return accepted, False

    def get_email(self, email_id: int) -> EmailStatus:
        with self.ctx.db.session() as s:  # always the primary: status must be current
            msg = s.scalars(
                select(EmailMessage).where(
                    EmailMessage.id == email_id, EmailMessage.workspace_id == self.workspace_id
                )
            ).first()
            if msg is None:
                fail(404, ["path", "email_id"], f"email {email_id} not found", "not_found")
            return EmailStatus.model_validate(msg)

    # -- unsubscribe -------------------------------------------------------------------

    def unsubscribe(self, token: str) -> UnsubscribeResult:
        invalid = ["path", "token"]
        try:
            claims = parse_token(token)
        except TokenError:
            fail(400, invalid, "invalid unsubscribe token", "invalid_token")
        with self.ctx.db.session() as s:
            client = s.get(Client, claims.client_id)
            if client is None:
                fail(400, invalid, "invalid unsubscribe token", "invalid_token")
            try:
                verify_token(self.ctx.settings.unsubscribe_secret, token, client.email_key)
            except TokenError as exc:
                fail(400, invalid, f"invalid unsubscribe token: {exc}", "invalid_token")
            if client.status == ACTIVE:
                client.status = UNSUBSCRIBED
                client.updated_at = utcnow()
            # Per workspace: the recipient opted out of this sender's mail (app/README.md).
            if s.get(WorkspaceUnsubscribe, (client.workspace_id, client.email_key)) is None:
                s.add(
                    WorkspaceUnsubscribe(
                        workspace_id=client.workspace_id,
                        email_key=client.email_key,
                        created_at=utcnow(),
                    )
                )
            try:
                s.commit()
            except IntegrityError:  # a concurrent click already recorded it
                s.rollback()
            return UnsubscribeResult(status="unsubscribed", client_id=client.id)

    # -- SES notifications via SNS -----------------------------------------------------

    def ses_webhook(self, raw_body: bytes) -> WebhookResult:
        try:
            message = json.loads(raw_body.decode("utf-8"))  # UTF-8 only, as SNS sends it
        except (ValueError, UnicodeDecodeError):
            fail(400, ["body"], "body is not a JSON SNS message", "invalid_json")
        if not isinstance(message, dict):
            fail(400, ["body"], "body is not a JSON object", "invalid_json")
        kind = message.get("Type")
        if kind not in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
            fail(400, ["body", "Type"], "unknown SNS message Type", "invalid_value")
        message_id = message.get("MessageId")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= 100:
            fail(400, ["body", "MessageId"], "MessageId missing or invalid", "invalid_value")
        # The topic and the age first: refusing them costs no certificate fetch. Both are
        # signed fields, so a message that passes here still has to pass the signature.
        topics = self.ctx.settings.sns_topic_arns
        if topics and message.get("TopicArn") not in topics:
            fail(403, ["body", "TopicArn"], "topic not allowed", "forbidden_topic")
        if kind == "SubscriptionConfirmation" and not topics:
            # Confirming would let any AWS account's topic deliver here.
            log.warning("SNS subscription not confirmed: SNS_TOPIC_ARNS is empty")
            fail(
                403, ["body", "TopicArn"], "no topic is allowed (SNS_TOPIC_ARNS)", "forbidden_topic"
            )
        try:
            check_fresh(message, self.ctx.settings.sns_max_age_s)
        except SnsVerificationError as exc:
            fail(403, ["body", "Timestamp"], f"SNS message rejected: {exc}", "stale")
        try:
            self.ctx.sns.verify(message)
        except SnsVerificationError as exc:
            fail(403, ["body", "Signature"], f"SNS signature rejected: {exc}", "bad_signature")

        if kind == "SubscriptionConfirmation":
            url = message.get("SubscribeURL", "")
            if not is_sns_url(url):
                fail(400, ["body", "SubscribeURL"], "SubscribeURL is not an SNS URL", "invalid")
            if self._seen(message_id):
                return WebhookResult(status="duplicate")
            try:
                self.ctx.confirm_fetcher(url)
            except Exception as exc:
                log.warning("SNS subscription confirmation failed: %s", exc)
                raise HTTPException(
                    status_code=502, detail="could not confirm subscription"
                ) from None
            self._record_only(message_id, kind)
            return WebhookResult(status="subscription confirmed")
        if kind == "UnsubscribeConfirmation":
            self._record_only(message_id, kind)
            return WebhookResult(status="ignored")

        try:
            event = json.loads(message.get("Message", ""))
        except (ValueError, TypeError):
            fail(400, ["body", "Message"], "Message is not a JSON SES notification", "invalid")
        if not isinstance(event, dict):
            fail(400, ["body", "Message"], "Message is not a JSON object", "invalid")
        reason, addresses = _suppression_from_ses(event)
        with self.ctx.db.session() as s:
            s.add(
                SnsNotification(
                    message_id=message_id,
                    type=str(event.get("notificationType") or event.get("eventType") or kind)[:50],
                )
            )
            try:
                s.flush()
            except IntegrityError:
                s.rollback()
                return WebhookResult(status="duplicate")
            updated = 0
            if reason is not None:
                # A complaint may replace a bounce; a bounce never replaces a complaint.
                overridable = (
                    [ACTIVE, UNSUBSCRIBED] if reason == BOUNCED else [ACTIVE, UNSUBSCRIBED, BOUNCED]
                )
                for address in addresses:
                    if s.get(Suppression, address) is None:
                        s.add(Suppression(email_key=address, reason=reason))
                    result = s.execute(
                        update(Client)
                        .where(Client.email_key == address, Client.status.in_(overridable))
                        .values(status=reason, updated_at=utcnow())
                    )
                    updated += result.rowcount  # type: ignore[attr-defined]
                    s.flush()
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return WebhookResult(status="duplicate")
        return WebhookResult(status="processed" if reason else "ignored", updated=updated)

    def _seen(self, message_id: str) -> bool:
        with self.ctx.db.session() as s:
            return s.get(SnsNotification, message_id) is not None

    def _record_only(self, message_id: str, kind: str) -> None:
        with self.ctx.db.session() as s:
            s.add(SnsNotification(message_id=message_id, type=kind))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()

    # -- health ------------------------------------------------------------------------

    def ready(self) -> list[str]:
        problems = []
        try:
            revision = self.ctx.db.revision()
        except Exception as exc:
            log.warning("readiness: database unavailable: %s", exc)
            problems.append("database unavailable")
        else:
            if revision != self.ctx.schema_head:
                log.warning("readiness: schema at %s, expected %s", revision, self.ctx.schema_head)
                problems.append(NOT_MIGRATED)
        try:
            self.ctx.queue.check()
        except Exception as exc:
            log.warning("readiness: broker unavailable: %s", exc)
            problems.append("broker unavailable")
        return problems


def _addresses(items: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("emailAddress"), str):
            try:
                key = email_key(parseaddr(item["emailAddress"])[1])
            except ValueError:
                continue  # not an address a client could have
            if len(key) <= 320:
                out.append(key)
    return sorted(set(out))


def _suppression_from_ses(event: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(reason, recipients) for a bounce or complaint; (None, []) for anything else.

    Handles both SNS notification format (`notificationType`) and event publishing
    (`eventType`). Only permanent bounces suppress: transient ones may deliver later.
    """
    kind = event.get("notificationType") or event.get("eventType")
    if kind == "Bounce":
        bounce = event.get("bounce")
        if isinstance(bounce, dict) and bounce.get("bounceType") == "Permanent":
            return BOUNCED, _addresses(bounce.get("bouncedRecipients"))
    elif kind == "Complaint":
        complaint = event.get("complaint")
        if isinstance(complaint, dict):
            return COMPLAINED, _addresses(complaint.get("complainedRecipients"))
    return None, []
