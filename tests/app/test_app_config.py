"""The environment contract with the infrastructure (names, precedence, refusals)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openapi_server import healthcheck
from openapi_server.config import ConfigError, Settings
from openapi_server.db import Database
from openapi_server.queues import make_celery
from sqlalchemy.engine import make_url

DB_PARTS = {
    "DB_HOST": "primary.internal",
    "DB_PORT": "6543",
    "DB_NAME": "reach",
    "DB_USER": "app",
    "DB_PASSWORD": "p@ss:w/rd%?#",
}


def test_embedded_default_is_sqlite_under_data_dir_with_auto_migrate(tmp_path: Path) -> None:
    s = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert s.is_sqlite and s.database_url.database == str(tmp_path / "coldreach.db")
    assert s.auto_migrate and s.queue_backend == "inline" and s.mailer == "console"
    assert s.port == 8000 and s.mail_outbox == tmp_path / "outbox.jsonl"
    assert Settings.from_env({"DATA_DIR": str(tmp_path), "AUTO_MIGRATE": "0"}).auto_migrate is False


def test_db_parts_build_a_psycopg_url_and_escape_the_password() -> None:
    s = Settings.from_env(DB_PARTS)
    url = s.database_url
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "primary.internal",
        6543,
        "reach",
    )
    assert (url.username, url.password) == ("app", "p@ss:w/rd%?#")
    assert make_url(url.render_as_string(hide_password=False)).password == "p@ss:w/rd%?#"
    assert s.auto_migrate is False  # PostgreSQL: migrations are a separate command


def test_database_url_wins_and_plain_postgresql_scheme_is_accepted() -> None:
    s = Settings.from_env({**DB_PARTS, "DATABASE_URL": "postgresql://u:p@elsewhere:5432/db"})
    assert s.database_url.drivername == "postgresql+psycopg"
    assert s.database_url.host == "elsewhere"
    s = Settings.from_env({"DATABASE_URL": "postgres://u:p@h/db"})
    assert s.database_url.drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "mysql://u:p@h/db"})


def test_read_replica_from_db_read_host_reuses_the_primary_credentials() -> None:
    s = Settings.from_env({**DB_PARTS, "DB_READ_HOST": "replica.internal"})
    assert s.database_read_url is not None
    assert s.database_read_url.host == "replica.internal"
    assert (s.database_read_url.port, s.database_read_url.password) == (6543, "p@ss:w/rd%?#")
    s = Settings.from_env({**DB_PARTS, "DATABASE_READ_URL": "postgresql://r:r@ro/db"})
    assert s.database_read_url is not None and s.database_read_url.host == "ro"
    with pytest.raises(ConfigError, match="DB_READ_HOST"):
        Settings.from_env({"DB_READ_HOST": "replica.internal"})  # SQLite primary


def test_pool_sizes_are_honoured_exactly_on_both_engines() -> None:
    s = Settings.from_env(
        {**DB_PARTS, "DB_READ_HOST": "r", "DB_POOL_SIZE": "7", "DB_MAX_OVERFLOW": "0"}
    )
    db = Database(s)
    assert db.replica is not None
    for engine in (db.primary, db.replica):
        assert engine.pool.size() == 7  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    db.dispose()


def test_unsubscribe_secret_is_required_outside_console_mode() -> None:
    with pytest.raises(ConfigError, match="UNSUBSCRIBE_SECRET"):
        Settings.from_env({"MAILER": "ses", "MAIL_FROM": "a@b.c"})
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        Settings.from_env({"MAILER": "ses", "UNSUBSCRIBE_SECRET": "x" * 32})
    ok = Settings.from_env({"MAILER": "ses", "MAIL_FROM": "a@b.c", "UNSUBSCRIBE_SECRET": "x" * 32})
    assert ok.unsubscribe_secret == "x" * 32


@pytest.mark.parametrize(
    "command",
    [
        ["-c", "import openapi_server.main"],  # what uvicorn does first
        ["-m", "openapi_server.worker"],
        ["-m", "openapi_server.migrate"],
        ["-m", "openapi_server.reconcile"],
    ],
    ids=["api", "worker", "migrate", "reconcile"],
)
def test_every_command_refuses_to_start_with_a_clear_message(
    tmp_path: Path, command: list[str]
) -> None:
    env = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path), "MAILER": "ses"}
    proc = subprocess.run(
        [sys.executable, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "configuration error: UNSUBSCRIBE_SECRET is required" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "eighty"}, "PORT must be an integer"),
        ({"SWEEP_INTERVAL_S": "soon"}, "SWEEP_INTERVAL_S must be a number"),
        ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT must be >= 0.1"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"SEND_LATENCY_MS": "-1"}, "SEND_LATENCY_MS"),
        ({"QUEUE_BACKEND": "kafka"}, "QUEUE_BACKEND"),
        ({"AUTO_MIGRATE": "maybe"}, "AUTO_MIGRATE"),
        ({"WORKER_POOL": "fibers"}, "WORKER_POOL"),
        ({"PUBLIC_BASE_URL": "reach.example.com"}, "PUBLIC_BASE_URL"),
        ({"RETRY_BACKOFF_MAX_S": "7200"}, "RETRY_BACKOFF_MAX_S"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_rediss_urls_verify_the_server_certificate() -> None:
    plain = make_celery(Settings.from_env({"REDIS_URL": "redis://h:6379/0"}))
    assert not plain.conf.broker_use_ssl
    tls = make_celery(Settings.from_env({"REDIS_URL": "rediss://:token@h:6379/0"}))
    assert tls.conf.broker_use_ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    explicit = make_celery(
        Settings.from_env({"REDIS_URL": "rediss://:t@h:6379/0?ssl_cert_reqs=required"})
    )
    assert not explicit.conf.broker_use_ssl  # the URL's own setting is kept
    assert tls.conf.task_acks_late and tls.conf.worker_prefetch_multiplier == 1


def test_key_prefix_isolates_broker_keys() -> None:
    app = make_celery(Settings.from_env({"CELERY_KEY_PREFIX": "stack-a:"}))
    assert app.conf.broker_transport_options["global_keyprefix"] == "stack-a:"
    assert (
        "global_keyprefix" not in make_celery(Settings.from_env({})).conf.broker_transport_options
    )


def test_worker_defaults_are_io_friendly() -> None:
    s = Settings.from_env({})
    assert (s.worker_pool, s.worker_concurrency) == ("threads", 32)
    s = Settings.from_env({"WORKER_POOL": "prefork", "WORKER_CONCURRENCY": "4"})
    assert (s.worker_pool, s.worker_concurrency) == ("prefork", 4)


def test_healthcheck_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORT", "1")  # nothing listens there
    assert healthcheck.main([]) == 1
    assert healthcheck.main(["--worker"]) == 1
    healthcheck.heartbeat_path().touch()
    assert healthcheck.main(["--worker"]) == 0
    old = time.time() - healthcheck.HEARTBEAT_MAX_AGE_S - 5
    os.utime(healthcheck.heartbeat_path(), (old, old))
    assert healthcheck.main(["--worker"]) == 1


def test_console_mailer_without_a_writable_data_dir_still_sends(tmp_path: Path) -> None:
    from openapi_server.mailer import ConsoleMailer, OutgoingEmail

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    mailer = ConsoleMailer(blocker / "outbox.jsonl")
    assert mailer.outbox is None
    assert mailer.send(OutgoingEmail(1, "a@example.com", "S", "B")).startswith("console-")


def test_dockerfile_prepares_data_dir_for_the_app_user() -> None:
    text = (Path(__file__).resolve().parents[2] / "app" / "Dockerfile").read_text()
    assert "install -d -o 10001 -g 10001 -m 0750 /tmp/coldreach" in text
