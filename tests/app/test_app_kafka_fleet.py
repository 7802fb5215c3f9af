"""Two sender fleets on one topic and two shards, one member SIGKILLed mid-send and restarted.

Phase 3 as deployed: two shard databases and a directory (the `sharded` fixture, on the
local PostgreSQL). 10,000 accepted messages, spread over both shards by their clients'
buckets (outbox rows on each shard, as the API writes them), are published by the relays
of the consumer processes (one relay per shard in each) and consumed by two consumer
groups at once, so every record reaches both fleets and every message is contended by
two claims, each on the message's shard and checked against the directory. One member of
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
from app_kafka import seed_queued_on_shards
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.kafka.outbox import stage_ids
from openapi_server.reconcile import flagged, resolve
from openapi_server.sharding import ShardRouter
from sqlalchemy import text
from sqlalchemy.engine import URL

pytestmark = pytest.mark.soak  # minutes end to end: `make soak`, not `make test`
MESSAGES = 10_000
CLIENTS = 500
# Each consumer process keeps a pool of CONCURRENCY + 2 connections per shard: three
# processes at 8 stay well inside a default PostgreSQL's 100 connections.
CONCURRENCY = 8
# The victim's send latency: 8 slots at 200 ms send 40 messages a second, so its ~5,000
# (half the partitions of its group) would take two minutes.
VICTIM_LATENCY_MS = 200


class MailLog:
    """The provider's record, read as it grows: each read parses only the lines appended
    since the last (the test polls it every 20 ms while up to 10,000 lines arrive)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict] = []
        self.by_pid: Counter[int] = Counter()
        self._offset = 0

    def read(self) -> list[dict]:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
            # A line being appended while we read is left for the next read.
            complete = chunk[: chunk.rfind(b"\n") + 1]
            for line in complete.splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.entries.append(entry)
                    self.by_pid[entry["pid"]] += 1
            self._offset += len(complete)
        return self.entries


def _statuses(shards: dict[str, Database]) -> Counter[str]:
    """Messages by status, over every shard."""
    out: Counter[str] = Counter()
    for db in shards.values():
        with db.primary.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT status || CASE WHEN needs_reconciliation THEN '+flagged' ELSE '' END,"
                    " count(*) FROM email_messages GROUP BY 1"
                )
            ).all()
        out.update({status: count for status, count in rows})
    return out


def _member(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "openapi_server.cli", "consume"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _url(url: URL | None) -> str:
    assert url is not None
    return url.render_as_string(hide_password=False)


def test_two_fleets_on_two_shards_and_a_killed_member_send_every_message_once(
    sharded: Settings, tmp_path: Path
) -> None:
    router = ShardRouter.from_settings(sharded.with_(db_pool_size=2, db_max_overflow=0))
    shards = router.shards()
    ids = seed_queued_on_shards(router, CLIENTS, MESSAGES // CLIENTS)
    assert len(ids) == MESSAGES
    per_shard = {name: _statuses({name: db})["queued"] for name, db in shards.items()}
    assert sum(per_shard.values()) == MESSAGES and min(per_shard.values()) > MESSAGES // 4
    mail = tmp_path / "mail.jsonl"
    kafka = sharded.kafka
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "DATABASE_", "KAFKA_", "MAIL", "SEND_", "WORKER_"))
    } | {
        "DB_SHARD_1": _url(sharded.db_shards[0]),
        "DB_SHARD_2": _url(sharded.db_shards[1]),
        "DB_DIRECTORY": _url(sharded.db_directory_url),
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
        "UNSUBSCRIBE_SECRET": sharded.unsubscribe_secret,
        "PYTHONUNBUFFERED": "1",
    }
    fleet_a = base | {"KAFKA_GROUP_ID": f"fleet-a-{secrets.token_hex(3)}"}
    fleet_b = base | {"KAFKA_GROUP_ID": f"fleet-b-{secrets.token_hex(3)}"}
    # Fleet A first, so it is the one sending when its member is killed; fleet B joins
    # while A sends (every record goes to both groups, and each claim is a race).
    # The victim sends slowly (its first life only): all its slots stay in their sends,
    # it cannot run out of records on its partitions before B is up, and it is killed
    # as soon as B is, before B can catch up with it there and leave it nothing to send.
    members = {
        "a1": _member(
            fleet_a | {"DATA_DIR": str(tmp_path / "a1"), "SEND_LATENCY_MS": str(VICTIM_LATENCY_MS)},
            tmp_path / "a1.log",
        ),
        "a2": _member(fleet_a | {"DATA_DIR": str(tmp_path / "a2")}, tmp_path / "a2.log"),
    }
    victim_pid = members["a1"].pid

    def alive() -> None:
        dead = {n: p.returncode for n, p in members.items() if p.poll() is not None}
        assert not dead, f"fleet member exited: {dead}; logs in {tmp_path}"

    mail_log = MailLog(mail)

    def sent_by(pid: int) -> int:
        mail_log.read()
        return mail_log.by_pid[pid]

    try:
        wait_for(lambda: alive() or sent_by(victim_pid) >= 300, timeout=300, interval=0.05)
        members["b1"] = _member(fleet_b | {"DATA_DIR": str(tmp_path / "b1")}, tmp_path / "b1.log")
        wait_for(
            lambda: alive() or b"consumer ready" in (tmp_path / "b1.log").read_bytes(),
            timeout=120,
            interval=0.1,
        )
        # Mid-send: a1's slots are busy (at its pace it has thousands of records left).
        os.killpg(victim_pid, signal.SIGKILL)
        members["a1"].wait()
        sent_by_victim = sent_by(victim_pid)
        members["a1"] = _member(
            fleet_a | {"DATA_DIR": str(tmp_path / "a1")}, tmp_path / "a1-restarted.log"
        )

        def settled() -> bool:
            alive()
            s = _statuses(shards)
            return s["sent"] + s["sending+flagged"] == MESSAGES

        wait_for(settled, timeout=600, interval=0.5)

        # The operator's step, shard by shard: look each flagged message up at the provider.
        provider = Counter(m["message_id"] for m in mail_log.read())
        unknown = []
        for db in shards.values():
            here = flagged(db)
            unknown += here
            requeued = []
            for message_id, *_ in here:
                if provider[message_id]:
                    assert resolve(db, message_id, "sent")
                else:
                    assert resolve(db, message_id, "requeue")
                    requeued.append(message_id)
            if requeued:
                with db.primary.begin() as conn:
                    assert stage_ids(conn, requeued) == len(requeued)
        wait_for(lambda: _statuses(shards)["sent"] == MESSAGES, timeout=120, interval=0.5)
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
        router.dispose()

    log = mail_log.read()
    calls = Counter(m["message_id"] for m in log)
    assert sum(c - 1 for c in calls.values()) == 0  # 0 sent twice
    assert set(calls) == set(ids)  # 0 lost
    assert _statuses(shards) == Counter({"sent": MESSAGES})
    # Both shards' messages went out, each through its own shard's outbox.
    by_shard = {name: _statuses({name: db}) for name, db in shards.items()}
    assert by_shard == {name: Counter({"sent": n}) for name, n in per_shard.items()}
    # The run really was what it claims: both fleets sent (the victim for fleet A, before
    # it died; which fleet wins each claim is a race), and the kill caught sends in flight
    # (at most one per slot).
    by_pid = Counter(m["pid"] for m in log)
    assert sent_by_victim > 0 and by_pid[members["b1"].pid] > 0
    assert 1 <= len(unknown) <= CONCURRENCY
    # Each member kept the heartbeat that `healthcheck --worker` reads.
    beats = {name: (tmp_path / name / "worker-heartbeat").exists() for name in ("a1", "a2", "b1")}
    assert all(beats.values()), beats
    # All clean exits after SIGTERM: offsets committed, nothing left in flight.
    assert all(p.returncode == 0 for name, p in members.items()), {
        n: p.returncode for n, p in members.items()
    }
