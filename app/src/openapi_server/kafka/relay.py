"""The outbox relay: publishes outbox rows with the idempotent producer, marks them on delivery.

Several relays may run at once (every API process and every consumer process runs one):
a relay claims a batch of unpublished rows with a lease (`lease_until`, taken under
`FOR UPDATE SKIP LOCKED`, so two relays never claim the same row at the same time),
produces them, waits for the delivery reports, and only then sets `published_at`. A
relay that dies mid-batch leaves its rows leased; when the lease expires another relay
publishes them again. The result is at-least-once: a row is marked only after the broker
acknowledged it, and a duplicate record costs one failed claim in the pipeline.

The same loop runs the sweeper (`stage_due`) and drops published rows past their
retention.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy import delete, or_, select, update

from ..config import Settings
from ..db import Database, OutboxRecord, utcnow
from ..pipeline import default_worker_id
from .clients import producer_config
from .outbox import stage_due
from .records import Headers, SendRecord
from .topics import Topics

log = logging.getLogger(__name__)
tracer = trace.get_tracer("openapi_server.kafka")

O = OutboxRecord  # noqa: E741 (the table, as M is in pipeline.py)
PURGE_EVERY_S = 60.0


@dataclass
class Claimed:
    id: int
    message_id: int
    client_id: int
    headers: str | None


class Relay:
    def __init__(
        self,
        settings: Settings,
        databases: Mapping[str, Database],
        producer: Producer | None = None,
        *,
        sweep: bool = False,
    ) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.databases = dict(databases)
        self.topics = Topics.from_settings(settings)
        self.relay_id = f"{default_worker_id()}/{uuid.uuid4().hex[:8]}"[:100]
        self.producer = producer or Producer(producer_config(settings, "coldreach-relay"))
        self.sweep = sweep
        self.wake = threading.Event()
        self._next_sweep = 0.0
        self._next_purge = time.monotonic() + PURGE_EVERY_S

    # -- one batch ---------------------------------------------------------------------

    def _claim(self, db: Database) -> list[Claimed]:
        now = utcnow()
        pending = (
            select(O.id)
            .where(O.published_at.is_(None), or_(O.lease_until.is_(None), O.lease_until < now))
            .order_by(O.id)
            .limit(self.kafka.outbox_batch)
            .with_for_update(skip_locked=True)
        )
        with db.primary.begin() as conn:
            rows = conn.execute(
                update(O)
                .where(O.id.in_(pending.scalar_subquery()))
                .values(
                    lease_until=now + timedelta(seconds=self.kafka.outbox_lease_s),
                    leased_by=self.relay_id,
                    attempts=O.attempts + 1,
                )
                .returning(O.id, O.message_id, O.client_id, O.headers)
            ).all()
        return sorted(
            (Claimed(r.id, r.message_id, r.client_id, r.headers) for r in rows), key=lambda c: c.id
        )

    def _headers(self, row: Claimed) -> Headers:
        """A PRODUCER span under the accepting request's trace; its context goes in the headers."""
        parent = propagate.extract(json.loads(row.headers)) if row.headers else None
        with tracer.start_as_current_span(
            f"{self.topics.send} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self.topics.send,
                "messaging.operation.type": "publish",
                "coldreach.message_id": row.message_id,
            },
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        return [(k, v.encode()) for k, v in carrier.items()]

    def _produce(self, rows: list[Claimed]) -> dict[int, str | None]:
        """Produce every row; {outbox id: None if delivered else the error}."""
        outcome: dict[int, str | None] = {}

        def delivered(row_id: int) -> Any:
            def report(err: KafkaError | None, _msg: Message) -> None:
                outcome[row_id] = None if err is None else str(err)

            return report

        for row in rows:
            record = SendRecord(row.message_id, row.client_id)
            while True:
                try:
                    self.producer.produce(
                        self.topics.send,
                        key=record.key,
                        value=record.value(),
                        headers=self._headers(row),
                        on_delivery=delivered(row.id),
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    self.producer.poll(0.1)
        # Delivery gives up after message.timeout.ms (half the lease): the wait is bounded.
        remaining = self.producer.flush(self.kafka.outbox_lease_s * 0.75)
        if remaining:
            log.warning("relay: %d record(s) without a delivery report yet", remaining)
        return outcome

    def _record(self, db: Database, outcome: dict[int, str | None]) -> None:
        now = utcnow()
        published = [i for i, err in outcome.items() if err is None]
        failed = {i: err for i, err in outcome.items() if err is not None}
        with db.primary.begin() as conn:
            if published:
                conn.execute(
                    update(O)
                    .where(O.id.in_(published))
                    .values(published_at=now, lease_until=None, last_error=None)
                )
            for row_id, err in failed.items():
                # Released at once: the next pass (of any relay) tries again.
                conn.execute(
                    update(O)
                    .where(O.id == row_id, O.leased_by == self.relay_id)
                    .values(lease_until=None, last_error=(err or "")[:2000])
                )
        if failed:
            first = next(iter(failed.values()))
            log.warning("relay: %d record(s) not delivered: %s", len(failed), first)

    def publish_once(self) -> int:
        """One batch from every database; the number of records the broker acknowledged."""
        total = 0
        for name, db in self.databases.items():
            rows = self._claim(db)
            if not rows:
                continue
            outcome = self._produce(rows)
            self._record(db, outcome)
            total += sum(1 for err in outcome.values() if err is None)
            log.debug("relay %s: %d/%d published", name, total, len(rows))
        return total

    # -- housekeeping ------------------------------------------------------------------

    def sweep_once(self) -> int:
        staged = 0
        for name, db in self.databases.items():
            with db.primary.begin() as conn:
                report = stage_due(
                    conn,
                    sending_timeout_s=self.settings.sending_timeout_s,
                    requeue_after_s=self.settings.requeue_after_s,
                )
            if report.flagged:
                log.warning(
                    "%s: %d message(s) stuck in sending flagged for reconciliation",
                    name,
                    report.flagged,
                )
            staged += report.staged
        if staged:
            self.wake.set()
        return staged

    def purge_once(self) -> int:
        cutoff = utcnow() - timedelta(seconds=self.kafka.outbox_retention_s)
        removed = 0
        for db in self.databases.values():
            old = select(O.id).where(O.published_at < cutoff).limit(5000).scalar_subquery()
            with db.primary.begin() as conn:
                removed += conn.execute(delete(O).where(O.id.in_(old))).rowcount
        return removed

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set; `wake` cuts the idle wait short (a new message)."""
        failures = 0
        while not stop.is_set():
            busy = False
            try:
                now = time.monotonic()
                if self.sweep and now >= self._next_sweep:
                    self._next_sweep = now + self.settings.sweep_interval_s
                    self.sweep_once()
                if now >= self._next_purge:
                    self._next_purge = now + PURGE_EVERY_S
                    self.purge_once()
                self.wake.clear()
                busy = self.publish_once() >= self.kafka.outbox_batch
                self.producer.poll(0)  # serves callbacks (OAUTHBEARER refresh) when idle
                failures = 0
            except Exception:
                failures += 1
                log.exception("relay pass failed")
                stop.wait(min(30.0, 0.5 * 2**failures))
                continue
            if not busy:
                self.wake.wait(self.kafka.relay_interval_s)

    def close(self) -> None:
        self.producer.flush(5)


class RelayThread:
    """A relay on its own thread (in the API process and in each consumer process)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.relay.run, args=(self._stop,), name="kafka-relay", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.relay.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.relay.kafka.outbox_lease_s)
            self._thread = None
        self.relay.close()
