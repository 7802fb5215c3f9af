"""Two sender fleets on one topic, one member SIGKILLed mid-send and restarted.

10,000 accepted messages (outbox rows, as the API writes them) are published by the
relays of the consumer processes and consumed by two consumer groups at once, so every
record reaches both fleets and every message is contended by two claims. One member of
fleet A is killed with SIGKILL while sending and started again. The console mailer
appends each call to a shared file before its latency: that file is the provider's
record, and the ground truth for "sent twice" and "lost".

Messages the killed member had claimed stay in `sending` and are flagged, never resent
by the fleet (the outcome is unknown). They are resolved as an operator would, against
the provider's record (`coldreach-app reconcile sent|requeue`); a requeued one goes
back through the outbox. At the end every message has been sent exactly once.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from app_helpers import wait_for
from app_kafka import seed_queued
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.kafka.outbox import stage_ids
from openapi_server.reconcile import flagged, resolve
from sqlalchemy import text

pytestmark = pytest.mark.soak  # minutes end to end: `make soak`, not `make test`
MESSAGES = 10_000
CLIENTS = 500
CONCURRENCY = 16


def _mail_log(path: Path) -> list[dict]:
    """Every complete line; a line being appended while we read is left for the next read."""
    if not path.exists():
        return []
    *complete, _partial = path.read_text().split("\n")
    return [json.loads(line) for line in complete if line.strip()]


def _statuses(db: Database) -> Counter[str]:
    with db.primary.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status || CASE WHEN needs_reconciliation THEN '+flagged' ELSE '' END,"
                " count(*) FROM email_messages GROUP BY 1"
            )
        ).all()
    return Counter({status: count for status, count in rows})


def _member(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "openapi_server.cli", "consume"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_two_fleets_and_a_killed_member_send_every_message_once(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    db = Database(kafka_settings.with_(db_pool_size=2, db_max_overflow=0))
    with db.primary.begin() as conn:
        ids = seed_queued(conn, CLIENTS, MESSAGES // CLIENTS)
    assert len(ids) == MESSAGES
    mail = tmp_path / "mail.jsonl"
    kafka = kafka_settings.kafka
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "DATABASE_", "KAFKA_", "MAIL", "SEND_", "WORKER_"))
    } | {
        "DATABASE_URL": kafka_settings.database_url.render_as_string(hide_password=False),
        "QUEUE_BACKEND": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SEND_TOPIC": kafka.send_topic,
        "KAFKA_DLQ_TOPIC": kafka.dlq_topic,
        "KAFKA_CREATE_TOPICS": "0",  # the mock cluster auto-creates, has no CreateTopics
        "KAFKA_CONCURRENCY": str(CONCURRENCY),
        "KAFKA_OUTBOX_LEASE_S": "10",
        "KAFKA_RELAY_INTERVAL_S": "0.1",
        "MAILER": "console",
        "MAIL_OUTBOX": str(mail),
        "SEND_LATENCY_MS": "2",
        "SWEEP_INTERVAL_S": "1",
        # Long enough that no live send is flagged on a loaded machine: the operator step
        # below must only ever see the victim's sends.
        "SENDING_TIMEOUT_S": "15",
        "AUTO_MIGRATE": "0",
        "UNSUBSCRIBE_SECRET": kafka_settings.unsubscribe_secret,
        "PYTHONUNBUFFERED": "1",
    }
    fleet_a = base | {"KAFKA_GROUP_ID": f"fleet-a-{secrets.token_hex(3)}"}
    fleet_b = base | {"KAFKA_GROUP_ID": f"fleet-b-{secrets.token_hex(3)}"}
    # Fleet A first, so it is the one sending when its member is killed; fleet B joins
    # while A sends (every record goes to both groups, and each claim is a race).
    members = {
        "a1": _member(fleet_a | {"DATA_DIR": str(tmp_path / "a1")}, tmp_path / "a1.log"),
        "a2": _member(fleet_a | {"DATA_DIR": str(tmp_path / "a2")}, tmp_path / "a2.log"),
    }
    victim_pid = members["a1"].pid

    def alive() -> None:
        dead = {n: p.returncode for n, p in members.items() if p.poll() is not None}
        assert not dead, f"fleet member exited: {dead}; logs in {tmp_path}"

    def sent_by(pid: int) -> int:
        return sum(1 for m in _mail_log(mail) if m["pid"] == pid)

    try:
        wait_for(lambda: alive() or sent_by(victim_pid) >= 300, timeout=300, interval=0.05)
        members["b1"] = _member(fleet_b | {"DATA_DIR": str(tmp_path / "b1")}, tmp_path / "b1.log")
        wait_for(
            lambda: alive() or b"consumer ready" in (tmp_path / "b1.log").read_bytes(),
            timeout=120,
            interval=0.1,
        )
        # Mid-send: a1's slots are busy (it is still sending).
        wait_for(lambda: alive() or sent_by(victim_pid) >= 600, timeout=300, interval=0.02)
        os.killpg(victim_pid, signal.SIGKILL)
        members["a1"].wait()
        sent_by_victim = sent_by(victim_pid)
        members["a1"] = _member(
            fleet_a | {"DATA_DIR": str(tmp_path / "a1")}, tmp_path / "a1-restarted.log"
        )

        def settled() -> bool:
            alive()
            s = _statuses(db)
            return s["sent"] + s["sending+flagged"] == MESSAGES

        wait_for(settled, timeout=600, interval=0.5)

        # The operator's step: look each flagged message up at the provider.
        provider = Counter(m["message_id"] for m in _mail_log(mail))
        unknown = flagged(db)
        requeued = []
        for message_id, *_ in unknown:
            if provider[message_id]:
                assert resolve(db, message_id, "sent")
            else:
                assert resolve(db, message_id, "requeue")
                requeued.append(message_id)
        if requeued:
            with db.primary.begin() as conn:
                assert stage_ids(conn, requeued) == len(requeued)
        wait_for(lambda: _statuses(db)["sent"] == MESSAGES, timeout=120, interval=0.5)
        time.sleep(2)  # late duplicate deliveries, had there been any, would show now
    finally:
        for proc in members.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in members.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        db.dispose()

    log = _mail_log(mail)
    calls = Counter(m["message_id"] for m in log)
    assert sum(c - 1 for c in calls.values()) == 0  # 0 sent twice
    assert set(calls) == set(ids)  # 0 lost
    assert _statuses(db) == Counter({"sent": MESSAGES})
    # The run really was what it claims: both fleets sent (the victim for fleet A, before
    # it died; which fleet wins each claim is a race), and the kill caught sends in flight
    # (at most one per slot).
    by_pid = Counter(m["pid"] for m in log)
    assert sent_by_victim > 0 and by_pid[members["b1"].pid] > 0
    assert len(unknown) <= CONCURRENCY
    # Each member kept the heartbeat that `healthcheck --worker` reads.
    beats = {name: (tmp_path / name / "worker-heartbeat").exists() for name in ("a1", "a2", "b1")}
    assert all(beats.values()), beats
    # All clean exits after SIGTERM: offsets committed, nothing left in flight.
    assert all(p.returncode == 0 for name, p in members.items()), {
        n: p.returncode for n, p in members.items()
    }
