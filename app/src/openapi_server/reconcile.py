"""Resolve messages flagged for reconciliation: `python -m openapi_server.reconcile`.

A flagged message stayed in `sending` with an unknown outcome (worker killed
mid-send, provider timeout). Look it up at the provider (for SES: the sending
events of the configuration set, or the recipient's mailbox), then record what
happened:

    python -m openapi_server.reconcile                      # list flagged messages
    python -m openapi_server.reconcile sent ID [PROVIDER_ID] # it did leave
    python -m openapi_server.reconcile failed ID            # it did not; give up
    python -m openapi_server.reconcile requeue ID           # it did not; send it now

Only flagged rows are touched, so a message can never be requeued by mistake
after it was sent.

With DB_SHARD_n (phase 3) every shard is read: the list names each message's shard, and
an ID is looked for on every shard (message ids are unique across shards). The
directory holds no messages. A shard that cannot be read is named in one line on stderr,
the others are still served, and the command exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from .config import Settings, settings_or_exit
from .db import FAILED, MAX_ID, QUEUED, SENDING, SENT, Database, EmailMessage, utcnow

M = EmailMessage
T = TypeVar("T")


def flagged(db: Database) -> list[tuple[int, int, str, str | None]]:
    with db.primary.connect() as conn:
        rows = conn.execute(
            select(M.id, M.client_id, M.to_address, M.last_error)
            .where(M.status == SENDING, M.needs_reconciliation.is_(True))
            .order_by(M.id)
        ).all()
    return [(r.id, r.client_id, r.to_address, r.last_error) for r in rows]


def resolve(db: Database, message_id: int, outcome: str, provider_id: str | None = None) -> bool:
    """Record the outcome of a flagged message. False if it is not flagged."""
    now = utcnow()
    values: dict[str, object] = {"needs_reconciliation": False, "updated_at": now}
    if outcome == "sent":
        values |= {"status": SENT, "sent_at": now, "provider_message_id": provider_id}
    elif outcome == "failed":
        values |= {"status": FAILED, "last_error": "reconciled: not sent"}
    elif outcome == "requeue":
        values |= {
            "status": QUEUED,
            "next_attempt_at": None,
            "claimed_by": None,
            "enqueued_at": now,
        }
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    with db.primary.begin() as conn:
        result = conn.execute(
            update(M)
            .where(M.id == message_id, M.status == SENDING, M.needs_reconciliation.is_(True))
            .values(**values)
        )
        return result.rowcount == 1


def databases(settings: Settings) -> dict[str, Database]:
    """Where messages live, by shard name: every DB_SHARD_n, or the one database ("")."""
    one = settings.with_(db_pool_size=1, db_max_overflow=0, database_read_url=None)
    if not settings.db_shards:
        return {"": Database(one)}
    return {
        str(n): Database(one.with_(database_url=url))
        for n, url in enumerate(settings.db_shards, start=1)
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = settings_or_exit()
    dbs = databases(settings)
    unreadable: list[str] = []

    def on(shard: str, call: Callable[[], T]) -> T | None:
        """`call` on one database; None, and the database named on stderr, if it fails."""
        try:
            return call()
        except DBAPIError as exc:
            name = f"shard {shard}" if shard else "the database"
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "error"
            print(f"{name} could not be read: {reason}", file=sys.stderr)
            unreadable.append(name)
            return None

    try:
        if not args:
            for shard, db in dbs.items():
                where = f"\tshard={shard}" if shard else ""
                for message_id, client_id, to, error in on(shard, lambda db=db: flagged(db)) or []:
                    print(f"{message_id}\tclient={client_id}\t{to}\t{error or ''}{where}")
            return 1 if unreadable else 0
        if args[0] not in ("sent", "failed", "requeue") or len(args) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        if not args[1].isascii() or not args[1].isdigit() or not 1 <= int(args[1]) <= MAX_ID:
            print(
                f"ID must be a message id between 1 and {MAX_ID}, got {args[1]!r}", file=sys.stderr
            )
            return 2
        message_id = int(args[1])
        provider_id = args[2] if len(args) > 2 else None
        found = None
        for shard, db in dbs.items():
            if on(shard, lambda db=db: resolve(db, message_id, args[0], provider_id)):
                found = db
                break
        if found is None:
            where = f" where it was looked for ({', '.join(unreadable)} did not answer)"
            print(
                f"message {message_id} is not flagged for reconciliation"
                + (where if unreadable else ""),
                file=sys.stderr,
            )
            return 1
        # Sharded deployments deliver through Kafka only: the outbox of the message's shard.
        if args[0] == "requeue" and (settings.db_shards or settings.queue_backend == "kafka"):
            from .kafka.outbox import stage_ids

            with found.primary.begin() as conn:  # a relay publishes it on its next pass
                stage_ids(conn, [message_id])
        elif args[0] == "requeue" and settings.queue_backend == "celery":
            from .queues import CeleryQueue

            CeleryQueue(settings).enqueue(message_id)
        print(f"message {message_id}: {args[0]}")
        return 0
    finally:
        for db in dbs.values():
            db.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
