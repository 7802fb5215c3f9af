"""Kafka delivery throughput: one `coldreach-app consume` process, SEND_LATENCY_MS=1000.

Every send takes one second (the seed's "sleep 1s"), so with KAFKA_CONCURRENCY=32 the
ideal is 32 emails/s. Messages are accepted first (rows plus outbox rows, as the API
writes them); the consumer process's relay publishes them to librdkafka's mock cluster
(owned by this process) and its consumer sends them. Throughput is measured from the
first claim to the last recorded send, so start-up (group join) is not counted.

    uv run --frozen python benchmarks/app_kafka_delivery.py [--messages 960] [--concurrency 32]

Prints one JSON line; exits non-zero below 90% of ideal, or on a duplicate or lost send.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from app_common import app_env, throwaway_database
from openapi_server.kafka.clients import MockCluster
from sqlalchemy import Connection, create_engine, text

TARGET = 0.90


def seed(conn: Connection, clients: int, per_client: int) -> list[int]:
    """Accepted sends: a workspace, clients, queued messages and their outbox rows."""
    ws = conn.execute(
        text("INSERT INTO workspaces (name, created_at) VALUES ('bench', now()) RETURNING id")
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO clients (workspace_id, name, email, email_key, status, created_at,"
            " updated_at) SELECT :ws, 'c' || g, 'c' || g || '@example.com',"
            " 'c' || g || '@example.com', 'active', now(), now() FROM generate_series(1, :n) g"
        ),
        {"ws": ws, "n": clients},
    )
    ids = conn.execute(
        text(
            "INSERT INTO email_messages (workspace_id, client_id, to_address, subject, body,"
            " status, attempts, needs_reconciliation, enqueued_at, created_at, updated_at)"
            " SELECT :ws, c.id, c.email, 'Hello', 'Body', 'queued', 0, false, now(), now(), now()"
            " FROM clients c, generate_series(1, :k) k ORDER BY k, c.id RETURNING id"
        ),
        {"ws": ws, "k": per_client},
    ).scalars()
    conn.execute(
        text(
            "INSERT INTO kafka_outbox (message_id, client_id, created_at, attempts)"
            " SELECT id, client_id, now(), 0 FROM email_messages ORDER BY id"
        )
    )
    return list(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=960)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=int, default=1000)
    args = parser.parse_args()
    clients = 96
    per_client = max(1, args.messages // clients)
    cluster = MockCluster(brokers=3)
    tag = secrets.token_hex(3)
    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(url)
        with engine.begin() as conn:
            ids = seed(conn, clients, per_client)
        mail = Path(tmp) / "mail.jsonl"
        env = app_env(
            url,
            QUEUE_BACKEND="kafka",
            KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap_servers,
            KAFKA_CREATE_TOPICS="0",
            KAFKA_SEND_TOPIC=f"email.send.bench{tag}",
            KAFKA_DLQ_TOPIC=f"email.send.dlq.bench{tag}",
            KAFKA_GROUP_ID=f"bench-{tag}",
            KAFKA_CONCURRENCY=str(args.concurrency),
            SEND_LATENCY_MS=str(args.latency_ms),
            MAIL_OUTBOX=str(mail),
            DATA_DIR=tmp,
            UNSUBSCRIBE_SECRET="bench-secret-0123456789abcdef",
        )
        log = (Path(tmp) / "consume.log").open("wb")
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "openapi_server.cli", "consume"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            published_s = None
            ideal_s = len(ids) * args.latency_ms / 1000 / args.concurrency
            deadline = time.monotonic() + 60 + 3 * ideal_s
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"consumer exited with {proc.returncode}; see its log")
                with engine.connect() as conn:
                    pending, unpublished = conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM email_messages WHERE status <> 'sent'),"
                            " (SELECT count(*) FROM kafka_outbox WHERE published_at IS NULL)"
                        )
                    ).one()
                if unpublished == 0 and published_s is None:
                    published_s = time.perf_counter() - started
                if pending == 0:
                    break
                time.sleep(0.2)
            with engine.connect() as conn:
                first, last, statuses = conn.execute(
                    text(
                        "SELECT min(claimed_at), max(sent_at),"
                        " (SELECT json_object_agg(status, n) FROM (SELECT status, count(*) n"
                        "  FROM email_messages GROUP BY status) s) FROM email_messages"
                    )
                ).one()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            engine.dispose()
        calls = Counter(json.loads(line)["message_id"] for line in mail.open())
    cluster.close()
    elapsed = (last - first).total_seconds()
    ideal = args.concurrency * 1000 / args.latency_ms
    rate = len(ids) / elapsed
    row = {
        "messages": len(ids),
        "concurrency": args.concurrency,
        "send_latency_ms": args.latency_ms,
        "seconds_first_claim_to_last_send": round(elapsed, 2),
        "emails_per_s": round(rate, 2),
        "ideal_emails_per_s": round(ideal, 2),
        "of_ideal": round(rate / ideal, 3),
        "outbox_published_after_s": round(published_s or float("nan"), 2),
        "duplicates": sum(c - 1 for c in calls.values() if c > 1),
        "lost": sum(1 for i in ids if calls[i] == 0),
        "statuses": statuses,
    }
    print(json.dumps(row))
    if row["duplicates"] or row["lost"]:
        raise SystemExit("FAILED: duplicates or lost messages")
    if rate / ideal < TARGET:
        raise SystemExit(f"FAILED: {rate / ideal:.1%} of ideal, target {TARGET:.0%}")


if __name__ == "__main__":
    main()
