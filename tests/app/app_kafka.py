"""Kafka test helpers: librdkafka's mock cluster, per-test topics, a consumer on a thread.

The mock cluster (`test.mock.num.brokers`) lives in this process as long as its owning
client; subprocesses reach it on its loopback listeners. It auto-creates topics with 4
partitions and has no CreateTopics, so every test gets fresh topic and group names.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from confluent_kafka import Consumer, Message
from openapi_server.config import KafkaSettings, Settings
from openapi_server.kafka.consumer import SendConsumer, SessionFor
from openapi_server.kafka.topics import Topics, topic_admin
from openapi_server.pipeline import Pipeline
from sqlalchemy import Connection, text


def fresh_kafka(bootstrap: str, **changes: Any) -> KafkaSettings:
    tag = secrets.token_hex(4)
    base = KafkaSettings(
        bootstrap_servers=bootstrap,
        send_topic=f"email.send.t{tag}",
        dlq_topic=f"email.send.dlq.t{tag}",
        group_id=f"sender-{tag}",
        create_topics=False,
        relay_interval_s=0.05,
        concurrency=8,
        outbox_lease_s=10.0,
    )
    return replace(base, **changes)


@contextmanager
def running_consumer(
    settings: Settings, pipeline: Pipeline, sessions: SessionFor | None = None
) -> Iterator[SendConsumer]:
    topic_admin(settings).ensure(Topics.from_settings(settings))
    consumer = SendConsumer(settings, pipeline, sessions)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        stop.set()
        thread.join(timeout=30)


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Message]:
    """Every record of `topic` from the start, until `expected` arrived or the time ran out."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{secrets.token_hex(4)}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None:
                    out.append(msg)
        # a short grace period catches records beyond the expected count
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def seed_queued(conn: Connection, clients: int, per_client: int) -> list[int]:
    """A workspace, `clients` clients, `per_client` queued messages each with its outbox row.

    What the API writes for each accepted send, in bulk; the message ids.
    """
    workspace = conn.execute(
        text("INSERT INTO workspaces (name, created_at) VALUES (:n, now()) RETURNING id"),
        {"n": f"fleet-{secrets.token_hex(3)}"},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO clients (workspace_id, name, email, email_key, status, created_at,"
            " updated_at) SELECT :ws, 'c' || g, 'c' || g || '@example.com',"
            " 'c' || g || '@example.com', 'active', now(), now()"
            " FROM generate_series(1, :n) g"
        ),
        {"ws": workspace, "n": clients},
    )
    ids = list(
        conn.execute(
            text(
                "INSERT INTO email_messages (workspace_id, client_id, to_address, subject, body,"
                " status, attempts, needs_reconciliation, enqueued_at, created_at, updated_at)"
                " SELECT :ws, c.id, c.email, 'Hello', 'Body', 'queued', 0, false, now(), now(),"
                " now() FROM clients c, generate_series(1, :k) k WHERE c.workspace_id = :ws"
                " ORDER BY k, c.id RETURNING id"
            ),
            {"ws": workspace, "k": per_client},
        ).scalars()
    )
    conn.execute(
        text(
            "INSERT INTO kafka_outbox (message_id, client_id, created_at, attempts)"
            " SELECT id, client_id, now(), 0 FROM email_messages WHERE workspace_id = :ws"
            " ORDER BY id"
        ),
        {"ws": workspace},
    )
    return ids
