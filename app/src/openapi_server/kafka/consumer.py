"""One member of the sender fleet: a consumer-group member that runs the pipeline per record.

Records are processed concurrently (up to KAFKA_CONCURRENCY per process); an offset is
stored only after the pipeline has recorded the message's outcome, and only up to the
lowest record still in flight (`PartitionOffsets`), so a consumer killed at any point
makes the group re-read every record whose outcome is not in the database. Re-reading is
harmless: the pipeline's atomic claim lets one delivery send, every other one is
SKIPPED. On a rebalance the partitions being taken away are drained first and their
offsets committed, so the next owner starts after the last recorded outcome.

Retries are not Kafka's business: a transient failure leaves the row `queued` with
`next_attempt_at`, and the sweeper stages a new record when it is due. Records that
cannot be decoded, or whose processing keeps raising something other than a database
error, go to the dead-letter topic and the partition moves on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..config import Settings
from ..pipeline import Pipeline, Result, Transaction
from ..sharding import BucketMoving
from .clients import consumer_config, producer_config
from .offsets import PartitionOffsets
from .records import PoisonRecord, SendRecord, carrier_of, decode
from .topics import Topics

log = logging.getLogger(__name__)
tracer = trace.get_tracer("openapi_server.kafka")

# A context manager yielding a Session on the database that holds this client's rows.
SessionFor = Callable[[int], AbstractContextManager[Session]]

DB_ATTEMPTS = 4
Key = tuple[str, int]


def session_transaction(
    sessions: SessionFor, client_id: int, *, autocommit: bool = False
) -> Transaction:
    """A `Pipeline.bound` transaction on the client's database, through `session_for`
    (with `autocommit`, a connection whose each statement commits by itself)."""
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else None

    @contextmanager
    def begin() -> Any:
        with sessions(client_id) as session:
            conn: Connection = session.connection(execution_options=options)
            yield conn
            session.commit()

    return begin


class SendConsumer:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        sessions: SessionFor | None = None,
        *,
        consumer: Consumer | None = None,
        dlq_producer: Producer | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.sessions = sessions
        self.topics = Topics.from_settings(settings)
        self.concurrency = settings.kafka.concurrency
        self.consumer = consumer or Consumer(consumer_config(settings, "coldreach-sender"))
        self.dlq = dlq_producer or Producer(producer_config(settings, "coldreach-dlq"))
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send")
        self._slots = threading.Semaphore(self.concurrency)
        self._finished: queue.SimpleQueue[tuple[str, int, int]] = queue.SimpleQueue()
        self._partitions: dict[Key, PartitionOffsets] = {}
        self.assigned = threading.Event()
        self.processed = 0
        self.dead_lettered = 0

    # -- the poll loop -------------------------------------------------------------------

    def run(self, stop: threading.Event, on_idle: Callable[[], None] | None = None) -> None:
        self.consumer.subscribe(
            [self.topics.send],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not stop.is_set():
                self._store_finished()
                if on_idle is not None:
                    on_idle()
                if not self._slots.acquire(timeout=0.1):
                    continue  # every slot busy: the next finish frees one
                msg = self.consumer.poll(0.2)
                if msg is None:
                    self._slots.release()
                    continue
                err = msg.error()
                if err is not None:
                    self._slots.release()
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error: %s", err)
                    continue
                self._dispatch(msg)
        finally:
            self._shutdown()

    def _dispatch(self, msg: Message) -> None:
        key: Key = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        offsets = self._partitions.setdefault(key, PartitionOffsets())
        offsets.started(offset)
        try:
            record = decode(msg.value())
        except PoisonRecord as exc:
            self._pool.submit(self._poison, msg, key, offset, str(exc))
            return
        self._pool.submit(self._handle, msg, key, offset, record)

    def _handle(self, msg: Message, key: Key, offset: int, record: SendRecord) -> None:
        try:
            parent = propagate.extract(carrier_of(msg.headers()))
            with tracer.start_as_current_span(
                f"{self.topics.send} process",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": self.topics.send,
                    "messaging.operation.type": "process",
                    "messaging.kafka.message.offset": offset,
                    "coldreach.message_id": record.message_id,
                },
            ) as span:
                result = self._process(record)
                if result is not None:
                    span.set_attribute("coldreach.outcome", result.outcome.value)
        except Exception as exc:  # a bug, not an outage: park the record, keep the partition
            log.exception("record %s/%s failed; dead-lettered", key, offset)
            self._dead_letter(msg, f"{type(exc).__name__}: {exc}")
        finally:
            self._finished.put((key[0], key[1], offset))
            self._slots.release()

    def _process(self, record: SendRecord) -> Result | None:
        pipeline = self.pipeline
        if self.sessions is not None:
            pipeline = pipeline.bound(
                session_transaction(self.sessions, record.client_id),
                session_transaction(self.sessions, record.client_id, autocommit=True),
            )
        delay = 0.5
        for attempt in range(1, DB_ATTEMPTS + 1):
            try:
                result = pipeline.process(record.message_id)
                self.processed += 1
                return result
            except (SQLAlchemyError, BucketMoving) as exc:
                # A moving bucket refuses the claim until it has switched shards: retried
                # like an outage, never dead-lettered.
                if attempt == DB_ATTEMPTS:
                    # The row stays queued (or flagged if the claim went through): the
                    # sweeper stages a new record once REQUEUE_AFTER_S has passed.
                    log.error(
                        "message %s: database unavailable (%s); left to the sweeper",
                        record.message_id,
                        type(exc).__name__,
                    )
                    return None
                time.sleep(delay)
                delay *= 2
        return None

    def _poison(self, msg: Message, key: Key, offset: int, reason: str) -> None:
        try:
            log.warning("poison record %s/%s: %s; dead-lettered", key, offset, reason)
            self._dead_letter(msg, reason)
        finally:
            self._finished.put((key[0], key[1], offset))
            self._slots.release()

    def _dead_letter(self, msg: Message, reason: str) -> None:
        source = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
        headers = [
            *(msg.headers() or []),
            ("coldreach.dlq.reason", reason[:1000].encode()),
            ("coldreach.dlq.source", source.encode()),
        ]
        outcome: list[KafkaError | None] = []
        for _ in range(3):
            self.dlq.produce(
                self.topics.dlq,
                key=msg.key(),
                value=msg.value(),
                headers=headers,
                on_delivery=lambda err, _m: outcome.append(err),
            )
            self.dlq.flush(30)
            if outcome and outcome[-1] is None:
                self.dead_lettered += 1
                return
        log.error("record %s could not be dead-lettered: %s", source, outcome)

    # -- offsets -------------------------------------------------------------------------

    def _store_finished(self, block_s: float = 0.0) -> None:
        """Store the offsets that finished records allow (the poll thread only)."""
        try:
            item = self._finished.get(timeout=block_s) if block_s else self._finished.get_nowait()
        except queue.Empty:
            return
        while True:
            topic, partition, offset = item
            offsets = self._partitions.get((topic, partition))
            if offsets is not None:
                commit = offsets.finished(offset)
                if commit is not None:
                    try:
                        self.consumer.store_offsets(
                            offsets=[TopicPartition(topic, partition, commit)]
                        )
                    except KafkaException as exc:  # the partition left us meanwhile
                        log.info("offset %s of %s/%s not stored: %s", commit, topic, partition, exc)
            try:
                item = self._finished.get_nowait()
            except queue.Empty:
                return

    def _drain(self, keys: list[Key], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while any(k in self._partitions and self._partitions[k].in_flight for k in keys):
            if time.monotonic() > deadline:
                log.warning("rebalance: records of %s still in flight; not waiting longer", keys)
                return
            self._store_finished(block_s=0.1)

    def _commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit failed: %s", exc)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("consumer ready: assigned %s", [p.partition for p in partitions])
        self.assigned.set()

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self._drain(keys, timeout_s=self.settings.kafka.max_poll_interval_ms / 2000)
        self._commit()
        for k in keys:
            self._partitions.pop(k, None)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else owns them already: their offsets are not ours to commit.
        for p in partitions:
            self._partitions.pop((p.topic, p.partition), None)

    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        self._store_finished()
        self._commit()
        self.consumer.close()
        self.dlq.flush(10)
