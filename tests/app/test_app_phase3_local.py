"""`make app PHASE=3` on one machine: the services, the edge and a Kafka sender on two
SQLite shards, a directory and librdkafka's mock cluster under DATA_DIR."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from app_helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMMAND = (sys.executable, "-m", "openapi_server.cli")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ids(path: Path, table: str) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}


def _request(port: int, method: str, path: str, key: str, body: object = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_make_app_phase3_serves_the_api_through_the_services(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DB_", "DATABASE_", "QUEUE_", "CLIENT_", "CAMPAIGN_", "GRPC_", "KAFKA_", "PHASE")
        )
    }
    env.update({"DATA_DIR": str(tmp_path), "PORT": str(port), "GRPC_SHUTDOWN_GRACE_S": "1"})
    # create-key beside it: the same PHASE and DATA_DIR reach the same directory.
    key_env = {**env, "PHASE": "3"}
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "app", "PHASE=3"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: b"HTTP API http://127.0.0.1" in log.read_bytes(), timeout=90, interval=0.2)
        key = subprocess.run(
            [*COMMAND, "create-key", "--workspace", "w", "--scope", "read,write,send"],
            env=key_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
                return True
            except OSError:
                return False

        wait_for(up, timeout=60, interval=0.2)
        status, client = _request(port, "POST", "/clients", key, {"name": "A", "email": "a@x.io"})
        assert status == 201, client
        status, task = _request(
            port, "POST", "/tasks", key, {"client_id": client["id"], "title": "T"}
        )
        assert status == 201 and task["client_id"] == client["id"], task
        status, missing = _request(port, "POST", "/tasks", key, {"client_id": 9999, "title": "T"})
        assert status == 404 and missing["detail"][0]["type"] == "not_found"
        status, sent = _request(
            port,
            "POST",
            "/email/send",
            key,
            {"client_id": client["id"], "subject": "S", "body": "B"},
        )
        assert status == 202
        wait_for(
            lambda: _request(port, "GET", f"/email/{sent['id']}", key)[1]["status"] == "sent",
            timeout=30,
        )
        # The calls went through the services: both logged them as listening and served.
        assert b"ready on port" in (tmp_path / "logs" / "clients.log").read_bytes()
        assert b"ready on port" in (tmp_path / "logs" / "campaigns.log").read_bytes()
        more = [
            _request(port, "POST", "/clients", key, {"name": f"N{i}", "email": f"n{i}@x.io"})
            for i in range(8)
        ]
        assert [status for status, _ in more] == [201] * 8
        ids = {client["id"], *(c["id"] for _, c in more)}
        on_shard = {n: _ids(tmp_path / f"shard{n}.db", "clients") for n in (1, 2)}
        assert on_shard[1] and on_shard[2], on_shard  # clients land on both shards
        assert on_shard[1] | on_shard[2] == ids and not on_shard[1] & on_shard[2]
        # The send went through the outbox of the client's shard (then Kafka, `consume`).
        home = 1 if client["id"] in on_shard[1] else 2
        assert _ids(tmp_path / f"shard{home}.db", "kafka_outbox")
        assert (tmp_path / "logs" / "consume.log").exists()
        assert _ids(tmp_path / "directory.db", "api_keys")  # create-key wrote the directory
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(0.2)
        except OSError:
            break
    else:
        raise AssertionError("the edge still listens after SIGTERM")
