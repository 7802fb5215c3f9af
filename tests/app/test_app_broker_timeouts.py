"""A broker that accepts connections but never answers cannot freeze the API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_helpers import wait_for
from openapi_server.apikeys import create_key
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.principal import SCOPES
from openapi_server.queues import make_celery
from sqlalchemy.engine import URL


class Blackhole:
    """A TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.accepted:  # unblocks anything still waiting on a reply
            conn.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    server = Blackhole()
    yield server
    server.close()


def test_send_returns_202_and_health_answers_while_the_broker_hangs(
    make_client, settings: Settings, blackhole: Blackhole
) -> None:
    api = make_client(
        settings_=settings.with_(
            queue_backend="celery",
            redis_url=f"redis://127.0.0.1:{blackhole.port}/0",
            broker_timeout_s=0.5,
        )
    )
    cid = api.post("/clients", json={"name": "B", "email": "b@example.com"}).json()["id"]
    results: list[tuple[int, dict]] = []

    def send(i: int) -> None:
        r = api.post("/email/send", json={"client_id": cid, "subject": f"S{i}", "body": "B"})
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()
    assert api.get("/healthz").status_code == 200
    for t in threads:
        t.join(timeout=120)  # a liveness bound, not a measurement: unbounded calls never return
    assert not any(t.is_alive() for t in threads), "requests hung on the broker"
    assert blackhole.accepted, "the broker was never contacted"
    assert sorted(code for code, _ in results) == [202] * 6
    for _, body in results:
        # Committed and left queued: the sweeper enqueues it once the broker answers.
        assert api.get(f"/email/{body['id']}").json()["status"] == "queued"


def test_every_broker_call_is_bounded() -> None:
    s = Settings.from_env({"REDIS_URL": "redis://cache:6379/0", "BROKER_TIMEOUT_S": "3"})
    conf = make_celery(s).conf
    options = conf.broker_transport_options
    assert options["socket_timeout"] == 3 and options["socket_connect_timeout"] == 3
    assert options["max_retries"] == 1  # establishing the producer's connection
    assert conf.broker_connection_timeout == 3
    assert conf.task_publish_retry_policy["max_retries"] == 1
    assert Settings.from_env({}).broker_timeout_s == 2.0


def test_a_served_api_keeps_answering_and_stops_on_sigterm(
    blackhole: Blackhole, pg_url: URL, clean_pg: None, tmp_path: Path
) -> None:
    """The real server: dozens of sends against a silent broker, then SIGTERM."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": pg_url.render_as_string(hide_password=False),
        "QUEUE_BACKEND": "celery",
        "REDIS_URL": f"redis://127.0.0.1:{blackhole.port}/0",
        "BROKER_TIMEOUT_S": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "openapi_server.main:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    db = Database(Settings(database_url=pg_url, auto_migrate=False))
    with db.session() as s:
        key = create_key(s, "broker-test", frozenset(SCOPES))
    db.dispose()
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())

    try:
        wait_for(lambda: _answers(call), timeout=30, interval=0.1)
        _, client = call("POST", "/clients", {"name": "S", "email": "s@example.com"})
        codes: list[int] = []

        def send(i: int) -> None:
            body = {"client_id": client["id"], "subject": f"S{i}", "body": "B"}
            codes.append(call("POST", "/email/send", body)[0])

        threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(48)]
        for t in threads:
            t.start()
        assert call("GET", "/healthz") == (200, {"status": "ok"})
        for t in threads:
            t.join(timeout=120)
        assert codes == [202] * 48
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _answers(call: Any) -> bool:
    try:
        return call("GET", "/healthz")[0] == 200
    except OSError:
        return False
