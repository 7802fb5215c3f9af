"""`QUEUE_BACKEND=kafka` for the API process: the outbox row is the enqueue.

`stage()` runs inside the transaction that inserts the message (see outbox.py); after
the commit, `enqueue()` only wakes this process's relay so the record leaves at once
instead of at the next relay pass. Nothing is lost if the process dies in between: any
relay (API or consumer process) publishes the row later.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaException
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database, EmailMessage
from . import outbox
from .relay import Relay, RelayThread


class KafkaQueue:
    def __init__(self, settings: Settings, databases: Mapping[str, Database]) -> None:
        self.settings = settings
        self.relay = Relay(settings, databases)
        self._thread = RelayThread(self.relay)

    def stage(self, session: Session, message: EmailMessage) -> None:
        outbox.stage(session, message)

    def enqueue(self, message_id: int, delay_s: float = 0.0) -> None:
        # The record is already in the outbox; a delay is the database's business
        # (next_attempt_at), never the topic's: Kafka has no per-record delay.
        self.relay.wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def check(self) -> None:
        """The brokers answer a metadata request for the send topic in BROKER_TIMEOUT_S."""
        try:
            self.relay.producer.list_topics(
                self.relay.topics.send, timeout=self.settings.broker_timeout_s
            )
        except KafkaException as exc:
            raise RuntimeError(f"Kafka unavailable: {exc}") from None
