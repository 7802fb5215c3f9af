"""Helpers shared by the app tests (waiting, worker subprocesses)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from openapi_server.apikeys import create_key
from openapi_server.config import Settings
from openapi_server.principal import SCOPES
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN, autocommit=True)


def create_database(prefix: str = "coldreach_app_test") -> URL:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)


def drop_database(url: URL) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def issue_key(
    api: TestClient, workspace: str = "test", scopes: tuple[str, ...] | frozenset[str] = SCOPES
) -> str:
    """A new API key of `workspace` (created if missing) on the running app's database."""
    with api.app.state.ctx.db.session() as s:  # type: ignore[attr-defined]
        return create_key(s, workspace, frozenset(scopes))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def authorize(api: TestClient, workspace: str = "test") -> TestClient:
    """Send every request of `api` with a key holding all scopes in `workspace`."""
    api.headers.update(bearer(issue_key(api, workspace)))
    return api


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a `python -m openapi_server.worker` subprocess using `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "DATABASE_", "QUEUE_", "MAIL", "SEND_", "WORKER_"))
    }
    env.update(
        {
            "DATABASE_URL": settings.database_url.render_as_string(hide_password=False),
            "REDIS_URL": settings.redis_url,
            "CELERY_QUEUE": settings.celery_queue,
            "CELERY_KEY_PREFIX": settings.celery_key_prefix,
            "QUEUE_BACKEND": "celery",
            "MAILER": "console",
            "MAIL_OUTBOX": str(settings.mail_outbox),
            "UNSUBSCRIBE_SECRET": settings.unsubscribe_secret,
            "PUBLIC_BASE_URL": settings.public_base_url,
            "AUTO_MIGRATE": "0",
            "RETRY_BACKOFF_BASE_S": "0",
            "SWEEP_INTERVAL_S": "3600",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "openapi_server.worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_worker_ready(log_path: Path, timeout: float = 30.0) -> None:
    wait_for(lambda: b"ready." in log_path.read_bytes(), timeout=timeout, interval=0.1)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
