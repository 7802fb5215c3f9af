"""The implementation of every operation (kept apart from the routes, as the generator expects)."""

from __future__ import annotations

import json
import logging
from email.utils import parseaddr
from typing import Any

from fastapi import HTTPException
from sqlalchemy import ColumnElement, select, update
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
    UNSUBSCRIBED,
    Client,
    SnsNotification,
    Suppression,
    WorkspaceUnsubscribe,
    utcnow,
)
from ..models import Client as ClientOut
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
from ..models import Task as TaskOut
from ..operations import clients, emails, tasks
from ..refusals import fail
from ..sharding.directory import ClientEmailIndex
from ..sns import SnsVerificationError, check_fresh, is_sns_url
from ..unsubscribe import TokenError, parse_token, verify_token

log = logging.getLogger(__name__)


class DefaultApiImpl(BaseDefaultApi):
    """The monolith: every operation on this process's database (phases 1 and 2)."""

    # -- clients -----------------------------------------------------------------------

    def create_client(self, body: ClientCreate) -> ClientOut:
        with self.ctx.db.session() as s:
            return clients.create(s, self.workspace_id, body)

    def list_clients(self, limit: int, offset: int) -> ClientList:
        with self.ctx.db.read_session() as s:
            return clients.list_page(s, self.workspace_id, limit, offset)

    def get_client(self, client_id: int) -> ClientOut:
        with self.ctx.db.session() as s:
            return clients.get(s, self.workspace_id, client_id)

    def update_client(self, client_id: int, body: ClientUpdate) -> ClientOut:
        with self.ctx.db.session() as s:
            return clients.update(s, self.workspace_id, client_id, body)

    def delete_client(self, client_id: int) -> None:
        with self.ctx.db.session() as s:
            clients.delete(s, self.workspace_id, client_id)

    # -- tasks -------------------------------------------------------------------------

    def create_task(self, body: TaskCreate) -> TaskOut:
        with self.ctx.db.session() as s:
            return tasks.create(s, self.workspace_id, body)

    def list_tasks(self, client_id: int | None, limit: int, offset: int) -> TaskList:
        with self.ctx.db.read_session() as s:
            return tasks.list_page(s, self.workspace_id, client_id, limit, offset)

    def get_task(self, task_id: int) -> TaskOut:
        with self.ctx.db.session() as s:
            return tasks.get(s, self.workspace_id, task_id)

    def update_task(self, task_id: int, body: TaskUpdate) -> TaskOut:
        with self.ctx.db.session() as s:
            return tasks.update(s, self.workspace_id, task_id, body)

    # -- email -------------------------------------------------------------------------

    def send_email(
        self, body: EmailSendRequest, idempotency_key: str | None
    ) -> tuple[EmailAccepted, bool]:
        quota = self.ctx.settings.daily_send_quota
        with self.ctx.db.session() as s:
            accepted, replayed = emails.accept(
                s, self.workspace_id, body, idempotency_key, quota, stage=self.ctx.queue.stage
            )
        # Enqueue only once the row is committed. If the broker is down the row stays
        # queued and the sweeper enqueues it later.
        if accepted.status == QUEUED and not replayed:
            try:
                self.ctx.queue.enqueue(accepted.id)
            except Exception:
                log.exception("enqueue of message %s failed; the sweeper will retry", accepted.id)
        return accepted, replayed

    def get_email(self, email_id: int) -> EmailStatus:
        with self.ctx.db.session() as s:  # always the primary: status must be current
            return emails.status(s, self.workspace_id, email_id)

    # -- unsubscribe -------------------------------------------------------------------

    def unsubscribe(self, token: str) -> UnsubscribeResult:
        invalid = ["path", "token"]
        try:
            claims = parse_token(token)
        except TokenError:
            fail(400, invalid, "invalid unsubscribe token", "invalid_token")
        with self.ctx.client_session(claims.client_id) as s:
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
            workspace_id, key = client.workspace_id, client.email_key
            if self.ctx.shards is None:
                _record_unsubscribe(s, workspace_id, key)
            else:  # the client's shard, then the directory (global, read by every send)
                s.commit()
                with self.ctx.db.session() as d:
                    _record_unsubscribe(d, workspace_id, key)
            return UnsubscribeResult(status="unsubscribed", client_id=claims.client_id)

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
                    s.flush()
                    if self.ctx.shards is None:
                        updated += _mark_clients(s, address, reason, overridable)
                    else:
                        updated += self._mark_clients_on_shards(s, address, reason, overridable)
            # With shards, the clients' rows are committed first: if a shard cannot be
            # written (down, or the client's bucket is moving) nothing is recorded here and
            # SNS delivers the notification again; the updates above are idempotent.
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return WebhookResult(status="duplicate")
        return WebhookResult(status="processed" if reason else "ignored", updated=updated)

    def _mark_clients_on_shards(
        self, directory: Session, address: str, reason: str, overridable: list[str]
    ) -> int:
        """The monolith's client update, on each client's shard: the directory's index
        names every client (one per workspace at most) that has the address."""
        assert self.ctx.shards is not None
        holders = directory.scalars(
            select(ClientEmailIndex.client_id).where(ClientEmailIndex.email_key == address)
        ).all()
        updated = 0
        for client_id in sorted(holders):
            with self.ctx.shards.session_for(client_id) as shard:
                updated += _mark_clients(
                    shard, address, reason, overridable, Client.id == client_id
                )
                shard.commit()
        return updated

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


def _mark_clients(
    s: Session,
    address: str,
    reason: str,
    overridable: list[str],
    *where: ColumnElement[bool],
) -> int:
    """Set the status of the clients with this address (not yet in a stronger state)."""
    result = s.execute(
        update(Client)
        .where(Client.email_key == address, Client.status.in_(overridable), *where)
        .values(status=reason, updated_at=utcnow())
    )
    s.flush()
    return result.rowcount  # type: ignore[attr-defined]


def _record_unsubscribe(s: Session, workspace_id: int, key: str) -> None:
    """Per workspace: the recipient opted out of this sender's mail (app/README.md)."""
    if s.get(WorkspaceUnsubscribe, (workspace_id, key)) is None:
        s.add(WorkspaceUnsubscribe(workspace_id=workspace_id, email_key=key, created_at=utcnow()))
    try:
        s.commit()
    except IntegrityError:  # a concurrent click already recorded it
        s.rollback()
