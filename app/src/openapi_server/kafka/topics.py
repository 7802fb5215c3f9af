"""Topic names and how topics come to exist, behind one interface.

On MSK, `auto.create.topics.enable` is false by default and stays false in our broker
configuration: topics are created by `AdminTopics` (the admin API, at start of the
consumer fleet) with the partition count and replication factor from the settings. The
librdkafka mock cluster has no CreateTopics (its admin call times out) and creates a
topic with 4 partitions on first use: `AutoCreatedTopics` does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from ..config import Settings
from .clients import base_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    send: str = "email.send.v1"
    dlq: str = "email.send.dlq.v1"

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(send=settings.kafka.send_topic, dlq=settings.kafka.dlq_topic)


class TopicAdmin(Protocol):
    def ensure(self, topics: Topics) -> None:
        """Make sure every topic exists (idempotent)."""
        ...


class AutoCreatedTopics:
    """The broker creates a topic on first use (the mock cluster): ask for its metadata.

    A producer's metadata request creates it; a consumer's does not, and a consumer that
    subscribed to a missing topic would look again only after
    `topic.metadata.refresh.interval.ms` (5 minutes by default).
    """

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.producer = Producer(base_config(settings, "coldreach-admin"))
        self.timeout_s = timeout_s

    def ensure(self, topics: Topics) -> None:
        for name in (topics.send, topics.dlq):
            self.producer.list_topics(name, timeout=self.timeout_s)


class AdminTopics:
    def __init__(
        self, settings: Settings, timeout_s: float = 30.0, admin: AdminClient | None = None
    ) -> None:
        self.admin = admin or AdminClient(base_config(settings, "coldreach-admin"))
        self.partitions = settings.kafka.partitions
        self.replication_factor = settings.kafka.replication_factor
        self.timeout_s = timeout_s

    def ensure(self, topics: Topics) -> None:
        wanted = [
            NewTopic(
                name, num_partitions=self.partitions, replication_factor=self.replication_factor
            )
            for name in (topics.send, topics.dlq)
        ]
        futures = self.admin.create_topics(wanted, request_timeout=self.timeout_s)
        for name, future in futures.items():
            try:
                future.result(timeout=self.timeout_s)
                log.info("created topic %s", name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise


def topic_admin(settings: Settings) -> TopicAdmin:
    if settings.kafka.create_topics and not settings.kafka.mock_brokers:
        return AdminTopics(settings)
    return AutoCreatedTopics(settings)
