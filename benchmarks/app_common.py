"""Shared setup for the app benchmarks: a throwaway PostgreSQL database, workers, polling."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
from openapi_server.config import Settings
from openapi_server.migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BIN = Path(sys.executable).parent


@contextmanager
def throwaway_database(migrated: bool = True) -> Iterator[URL]:
    name = f"coldreach_app_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)
    try:
        if migrated:
            upgrade(Settings(database_url=url, auto_migrate=False))
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(engine: Engine, n: int) -> list[int]:
    """n active clients with one queued message each (tables emptied first); the message ids."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE clients, email_messages RESTART IDENTITY CASCADE"))
        conn.execute(
            text(
                "INSERT INTO clients (name, email, email_key, status, created_at, updated_at) "
                "SELECT 'c' || g, 'c' || g || '@example.com', 'c' || g || '@example.com', "
                "'active', :now, :now FROM generate_series(1, :n) g"
            ),
            {"n": n, "now": now},
        )
        ids = conn.execute(
            text(
                "INSERT INTO email_messages (client_id, to_address, subject, body, status, "
                "attempts, needs_reconciliation, enqueued_at, created_at, updated_at) "
                "SELECT id, email, 'Hello', 'Body', 'queued', 0, false, :now, :now, :now "
                "FROM clients ORDER BY id RETURNING id"
            ),
            {"now": now},
        ).scalars()
        return list(ids)


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(url: URL, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "LANG": "C.UTF-8",
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "REDIS_URL": REDIS_URL,
        "AUTO_MIGRATE": "0",
        "MAILER": "console",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def start_workers(env: dict[str, str], count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        log = (log_dir / f"worker{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "openapi_server.worker", "--loglevel=WARNING"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    # Ready when each worker answers a ping through the broker.
    from openapi_server.queues import make_celery

    celery = make_celery(Settings.from_env({"REDIS_URL": env["REDIS_URL"]}))
    deadline = time.monotonic() + 60
    while True:
        replies = celery.control.ping(timeout=0.5) or []
        if len(replies) >= count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
