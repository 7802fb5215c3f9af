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
from openapi_server.sharding import ShardRouter
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
    _outbox_rows(conn, workspace)
    return ids


def seed_queued_on_shards(router: ShardRouter, clients: int, per_client: int) -> list[int]:
    """`seed_queued` on a sharded deployment: the workspace in the directory (and copied to
    every shard), `clients` clients with ids from the directory's allocator, each on the
    shard its bucket maps to (indexed in the directory as the API does), and `per_client`
    queued messages each with its outbox row on that shard. The message ids."""
    with router.directory() as d:
        workspace = d.execute(
            text("INSERT INTO workspaces (name, created_at) VALUES (:n, now()) RETURNING id"),
            {"n": f"fleet-{secrets.token_hex(3)}"},
        ).scalar_one()
        d.commit()
    router.replicate_workspaces()
    client_ids = router.allocate_ids(clients)
    # Interleaved as the one-database seed orders them: every client's first, then seconds.
    message_ids = router.allocate_ids(clients * per_client)
    messages = [(mid, client_ids[i % clients]) for i, mid in enumerate(message_ids)]
    with router.directory() as d:
        d.execute(
            text(
                "INSERT INTO client_email_index (workspace_id, email_key, client_id)"
                " SELECT :ws, 'c' || c || '@example.com', c FROM unnest(CAST(:ids AS bigint[])) c"
            ),
            {"ws": workspace, "ids": client_ids},
        )
        d.commit()
    for name, db in router.shards().items():
        mine = [c for c in client_ids if router.shard_of(c) == name]
        rows = [(m, c) for m, c in messages if router.shard_of(c) == name]
        with db.primary.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO clients (id, workspace_id, name, email, email_key, status,"
                    " created_at, updated_at) SELECT c, :ws, 'c' || c, 'c' || c || '@example.com',"
                    " 'c' || c || '@example.com', 'active', now(), now()"
                    " FROM unnest(CAST(:ids AS bigint[])) c"
                ),
                {"ws": workspace, "ids": mine},
            )
            conn.execute(
                text(
                    "INSERT INTO email_messages (id, workspace_id, client_id, to_address, subject,"
                    " body, status, attempts, needs_reconciliation, enqueued_at, created_at,"
                    " updated_at) SELECT m.id, :ws, m.client_id, 'c' || m.client_id ||"
                    " '@example.com', 'Hello', 'Body', 'queued', 0, false, now(), now(), now()"
                    " FROM unnest(CAST(:mids AS bigint[]), CAST(:cids AS bigint[]))"
                    " AS m(id, client_id) ORDER BY m.id"
                ),
                {"ws": workspace, "mids": [m for m, _ in rows], "cids": [c for _, c in rows]},
            )
            _outbox_rows(conn, workspace)
    return message_ids


def _outbox_rows(conn: Connection, workspace: int) -> None:
    """An outbox row for each of the workspace's messages, in id order, as acceptance
    writes them."""
    conn.execute(
        text(
            "INSERT INTO kafka_outbox (message_id, client_id, created_at, attempts)"
            " SELECT id, client_id, now(), 0 FROM email_messages WHERE workspace_id = :ws"
            " ORDER BY id"
        ),
        {"ws": workspace},
    )
