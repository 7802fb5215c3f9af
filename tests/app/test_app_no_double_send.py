"""No double send: racing worker processes, Celery redeliveries, and a worker killed mid-send.

Every mailer call is appended to an outbox file by the console mailer before the
simulated latency, so calls made by a process that is later killed still count.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from app_helpers import (
    authorize,
    start_worker,
    stop_worker,
    wait_for,
    wait_worker_ready,
    worker_env,
)
from fastapi.testclient import TestClient
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.mailer import ConsoleMailer
from openapi_server.main import create_app
from openapi_server.queues import CeleryQueue
from sqlalchemy import text

HERE = Path(__file__).parent


def outbox_counts(path: Path) -> Counter[int]:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["message_id"] for line in path.read_text().splitlines())


def statuses(db: Database) -> dict[int, tuple[str, bool]]:
    with db.primary.connect() as conn:
        rows = conn.execute(text("SELECT id, status, needs_reconciliation FROM email_messages"))
        return {r.id: (r.status, bool(r.needs_reconciliation)) for r in rows}


def queue_messages(api: TestClient, n: int) -> list[int]:
    ids = []
    for i in range(n):
        cid = api.post("/clients", json={"name": "R", "email": f"r{i}@example.com"}).json()["id"]
        r = api.post("/email/send", json={"client_id": cid, "subject": f"S{i}", "body": "B"})
        assert r.status_code == 202
        ids.append(r.json()["id"])
    return ids


@pytest.fixture
def held_api(pg_settings: Settings, clean_pg: None):
    """The API on PostgreSQL with its queue stopped: messages stay queued for the racers."""
    mailer = ConsoleMailer(pg_settings.mail_outbox)
    with TestClient(create_app(pg_settings, mailer=mailer)) as api:
        authorize(api)
        api.app.state.ctx.queue.stop()  # type: ignore[attr-defined]
        yield api


def test_racing_processes_send_each_message_exactly_once(
    held_api: TestClient, pg_settings: Settings
) -> None:
    ids = queue_messages(held_api, 60)
    # 20 ms a send: a racer alone would need over a second of sends for all 60, time in
    # which the three others, released with it, surely claim some.
    env = worker_env(pg_settings, SEND_LATENCY_MS="20")
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "app_race_worker.py"), *map(str, ids)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    # Start gate: every racer has imported and connected before any of them claims, so
    # one that started early cannot take all 60 while the others are still importing.
    try:
        for p in procs:
            assert p.stdout is not None
            # A hang guard only: a racer that never gets ready fails the test.
            ready, _, _ = select.select([p.stdout], [], [], 60)
            assert ready and p.stdout.readline() == "ready\n", "a racer did not start"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), outputs
    counts = outbox_counts(pg_settings.mail_outbox)  # type: ignore[arg-type]
    assert counts == Counter(dict.fromkeys(ids, 1))  # 0 duplicates, 0 lost
    db = held_api.app.state.ctx.db  # type: ignore[attr-defined]
    assert set(statuses(db).values()) == {("sent", False)}
    # The work really was contended: more than one process won some claims.
    winners = sum(1 for out in outputs if "'sent'" in out)
    assert winners >= 2, outputs


@pytest.fixture
def celery_settings(pg_settings: Settings) -> Settings:
    return pg_settings.with_(queue_backend="celery")


def test_celery_end_to_end_with_two_workers_and_redeliveries(
    celery_settings: Settings, clean_pg: None, tmp_path: Path
) -> None:
    env = worker_env(celery_settings, WORKER_CONCURRENCY="8", SEND_LATENCY_MS="20")
    workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        for i in range(2):
            wait_worker_ready(tmp_path / f"worker{i}.log")
        with TestClient(create_app(celery_settings)) as api:
            authorize(api)
            ids = queue_messages(api, 30)
            queue = CeleryQueue(celery_settings)
            for mid in ids:  # every message delivered three more times
                for _ in range(3):
                    queue.enqueue(mid)
            db = api.app.state.ctx.db  # type: ignore[attr-defined]
            wait_for(lambda: all(s == ("sent", False) for s in statuses(db).values()), 30)
            r = api.get(f"/email/{ids[0]}").json()
            assert r["status"] == "sent" and r["provider_message_id"].startswith("console-")
        counts = outbox_counts(celery_settings.mail_outbox)  # type: ignore[arg-type]
        assert counts == Counter(dict.fromkeys(ids, 1))
        logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(2))
        assert "succeeded" in logs
    finally:
        for w in workers:
            stop_worker(w)


def test_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    celery_settings: Settings, clean_pg: None, tmp_path: Path
) -> None:
    outbox: Path = celery_settings.mail_outbox  # type: ignore[assignment]
    # The victim is always killed, so its sends never need to end: with an hour of latency
    # each of its four slots stays in its send from the outbox line to the kill, however
    # slowly the test queues the messages.
    slow = worker_env(celery_settings, WORKER_CONCURRENCY="4", SEND_LATENCY_MS="3600000")
    victim = start_worker(slow, tmp_path / "victim.log")
    try:
        wait_worker_ready(tmp_path / "victim.log")
        with TestClient(create_app(celery_settings)) as api:
            authorize(api)
            ids = queue_messages(api, 12)
            # A hang guard only: the four sends start as soon as their messages are queued.
            wait_for(lambda: sum(outbox_counts(outbox).values()) >= 4, 60)
            os.killpg(victim.pid, signal.SIGKILL)  # mid-send: four sends in their sleep
            victim.wait()
            assert sum(outbox_counts(outbox).values()) == 4  # no slot got past its send
            db = api.app.state.ctx.db  # type: ignore[attr-defined]
            before = statuses(db)
            assert sum(1 for s, _ in before.values() if s == "sending") == 4
            assert all(s in ("queued", "sending") for s, _ in before.values())

            # A new worker whose sweeper runs every half second with one-second timeouts:
            # it flags the four (never resending them) and re-enqueues the rows the dead
            # worker had prefetched but not claimed. Nothing else is done by the test.
            fast = worker_env(
                celery_settings,
                WORKER_CONCURRENCY="4",
                SWEEP_INTERVAL_S="0.5",
                SENDING_TIMEOUT_S="1",
                REQUEUE_AFTER_S="1",
                DATA_DIR=str(tmp_path / "survivor-data"),
            )
            survivor = start_worker(fast, tmp_path / "survivor.log")
            try:
                wait_for(
                    lambda: all(
                        s == "sent" or (s == "sending" and f) for s, f in statuses(db).values()
                    ),
                    timeout=30,
                )
                # The container health probe's heartbeat, written by the same thread.
                wait_for(lambda: (tmp_path / "survivor-data" / "worker-heartbeat").exists(), 15)
            finally:
                stop_worker(survivor)
            final = statuses(db)
    finally:
        # Its whole process group: a failure before the kill must not leave prefork
        # children sleeping in an hour-long send, then marking rows `sent` in a database
        # later tests reuse.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)
        stop_worker(victim)

    counts = outbox_counts(outbox)
    assert max(counts.values()) == 1  # 0 duplicate mailer calls
    assert set(final) == set(ids)  # 0 lost
    flagged = [i for i, (s, f) in final.items() if s == "sending" and f]
    sent = [i for i, (s, f) in final.items() if s == "sent"]
    assert len(flagged) == 4 and len(sent) == 8
    assert all(counts[i] == 1 for i in sent)
    assert all(counts[i] <= 1 for i in flagged)  # called once, before the kill
