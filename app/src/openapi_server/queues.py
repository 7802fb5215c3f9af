"""Queue backends: `inline` (threads inside the API process) and `celery` (Redis).

Both are handed message ids only after the row is committed. Both may deliver
an id more than once; the pipeline's atomic claim makes that harmless. The third,
`kafka`, lives in openapi_server/kafka/ (its enqueue is an outbox row written by
`stage()` in the message's own transaction).
"""

from __future__ import annotations

import heapq
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from celery import Celery
from sqlalchemy.orm import Session

from .config import Settings
from .db import Database, EmailMessage
from .pipeline import Pipeline

log = logging.getLogger(__name__)

TASK_NAME = "openapi_server.worker.send_email_task"


class QueueBackend(Protocol):
    def stage(self, session: Session, message: EmailMessage) -> None:
        """Inside the transaction that inserts `message`, before its commit."""
        ...

    def enqueue(self, message_id: int, delay_s: float = 0.0) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def check(self) -> None:
        """Raise when the queue cannot take messages (readiness)."""
        ...


def make_celery(settings: Settings) -> Celery:
    app = Celery("coldreach", broker=settings.redis_url)
    timeout = settings.broker_timeout_s
    conf: dict[str, Any] = {
        "broker_connection_retry_on_startup": True,
        # Every broker call is bounded: a Redis that accepts connections and never answers
        # must not hold an API request (or the sweeper) forever. A publish that gives up
        # leaves the row queued; the sweeper enqueues it once the broker answers again.
        "broker_connection_timeout": timeout,
        "broker_transport_options": {
            "visibility_timeout": settings.celery_visibility_timeout_s,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # Establishing the producer's connection: one retry, not kombu's unbounded default.
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        "task_default_queue": settings.celery_queue,
        "task_ignore_result": True,
        # The task is idempotent (the claim), so acknowledge late: a worker that dies
        # before claiming gives the message back instead of losing it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
    }
    if settings.celery_key_prefix:
        # Every broker key under one prefix: several deployments can share a Redis.
        conf["broker_transport_options"]["global_keyprefix"] = settings.celery_key_prefix
    parsed = urlparse(settings.redis_url)
    if parsed.scheme == "rediss" and "ssl_cert_reqs" not in parse_qs(parsed.query):
        # ElastiCache in-transit encryption: verify the server certificate.
        conf["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    app.conf.update(conf)
    return app


class CeleryQueue:
    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)

    def stage(self, session: Session, message: EmailMessage) -> None:
        pass  # Redis is not in the database's transaction: enqueue after the commit

    def enqueue(self, message_id: int, delay_s: float = 0.0) -> None:
        self.app.send_task(
            TASK_NAME,
            args=[message_id],
            countdown=delay_s if delay_s > 0 else None,
            queue=self.settings.celery_queue,
        )

    def enqueue_many(self, message_ids: list[int]) -> None:
        """One broker connection for a batch (the sweeper, bulk sends)."""
        with self.app.producer_or_acquire() as producer:
            for message_id in message_ids:
                self.app.send_task(
                    TASK_NAME,
                    args=[message_id],
                    queue=self.settings.celery_queue,
                    producer=producer,
                )

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def check(self) -> None:
        # Connecting to Redis includes a PING; bounded by BROKER_TIMEOUT_S, no retry.
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=self.settings.broker_timeout_s)


class InlineQueue:
    """A thread pool in the API process plus one timer thread for retries and sweeps."""

    def __init__(self, pipeline: Pipeline, settings: Settings) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self._pool: ThreadPoolExecutor | None = None
        self._timers: list[tuple[float, int]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0

    def start(self) -> None:
        self._stopping = False
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.worker_concurrency, thread_name_prefix="email"
        )
        self._thread = threading.Thread(target=self._timer_loop, name="email-timer", daemon=True)
        self._thread.start()
        # Whatever was queued when the previous process stopped lived only in its memory.
        try:
            for message_id in self.pipeline.sweep(requeue_after_s=0).requeue:
                self.enqueue(message_id)
        except Exception:
            log.exception("initial sweep failed")
        self._next_sweep = time.monotonic() + self.settings.sweep_interval_s

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def check(self) -> None:
        if self._pool is None:
            raise RuntimeError("inline queue is not running")

    def stage(self, session: Session, message: EmailMessage) -> None:
        pass  # the start-up sweep finds rows queued before a restart

    def enqueue(self, message_id: int, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            with self._cond:
                heapq.heappush(self._timers, (time.monotonic() + delay_s, message_id))
                self._cond.notify_all()
            return
        pool = self._pool
        if pool is None:
            raise RuntimeError("inline queue is not running")
        pool.submit(self._run, message_id)

    def _run(self, message_id: int) -> None:
        try:
            result = self.pipeline.process(message_id)
        except Exception:
            log.exception("processing message %s failed; the sweeper will pick it up", message_id)
            return
        if result.requeue_in_s is not None:
            self.enqueue(message_id, result.requeue_in_s)

    def _timer_loop(self) -> None:
        while True:
            due: list[int] = []
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    due.append(heapq.heappop(self._timers)[1])
                wake = min(
                    self._next_sweep, self._timers[0][0] if self._timers else self._next_sweep
                )
                if not due and now < self._next_sweep:
                    self._cond.wait(timeout=max(0.0, wake - now))
                    continue
            for message_id in due:
                try:
                    self.enqueue(message_id)
                except RuntimeError:
                    return
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self.settings.sweep_interval_s
                try:
                    for message_id in self.pipeline.sweep().requeue:
                        self.enqueue(message_id)
                except Exception:
                    log.exception("sweep failed")


def make_queue(
    settings: Settings, pipeline: Pipeline, databases: Mapping[str, Database] | None = None
) -> QueueBackend:
    """The backend QUEUE_BACKEND names: where accepted messages go to be sent.

    `databases`: those whose outboxes a Kafka relay publishes (every shard); the
    pipeline's by default."""
    if settings.queue_backend == "kafka":
        from .kafka.backend import KafkaQueue  # confluent-kafka only where it is used

        return KafkaQueue(settings, databases or {"default": pipeline.db})
    if settings.queue_backend == "celery":
        return CeleryQueue(settings)
    return InlineQueue(pipeline, settings)
