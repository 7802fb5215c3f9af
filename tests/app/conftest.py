"""Fixtures for the app tests: a throwaway PostgreSQL database and a Redis DB per session.

The database `coldreach_app_test_<random>` is created through the `postgres`
database and dropped at the end; in Redis DB 13 every key of the session carries a
random prefix and is deleted at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from app_helpers import authorize, create_database, drop_database
from app_kafka import fresh_kafka
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.kafka.clients import MockCluster
from openapi_server.mailer import Mailer
from openapi_server.main import create_app
from openapi_server.migrate import upgrade
from openapi_server.sharding.schema import upgrade_all
from sqlalchemy import text
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = 13
TABLES = (
    "sns_notifications, suppressions, email_messages, tasks, clients, api_keys, send_counts,"
    " workspace_unsubscribes, workspaces"
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[URL]:
    url = create_database()
    upgrade(Settings(database_url=url, auto_migrate=False))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = f"{REDIS_BASE}/{REDIS_DB}"
    yield url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """Every broker key of this session lives under this prefix, deleted at the end.

    Not FLUSHDB: another test session (a CI run next to a local one) may share the DB.
    """
    prefix = f"coldreach-test-{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def pg_settings(pg_url: URL, redis_url: str, redis_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=pg_url,
        data_dir=tmp_path,
        auto_migrate=False,
        mail_outbox=tmp_path / "outbox.jsonl",
        redis_url=redis_url,
        celery_key_prefix=redis_prefix,
        celery_queue=f"test-{secrets.token_hex(4)}",
        retry_backoff_base_s=0.0,
        worker_concurrency=4,
        public_base_url="https://reach.example.com",
        unsubscribe_secret="test-secret-0123456789abcdef",
    )


@pytest.fixture
def clean_pg(pg_url: URL) -> Iterator[None]:
    db = Database(Settings(database_url=pg_url, db_pool_size=1, db_max_overflow=0))
    with db.primary.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    db.dispose()
    yield


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path), "RETRY_BACKOFF_BASE_S": "0"}).with_(
        public_base_url="https://reach.example.com",
        unsubscribe_secret="test-secret-0123456789abcdef",
        worker_concurrency=4,
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """The same test against this machine's PostgreSQL and the embedded SQLite default."""
    if request.param == "postgresql":
        request.getfixturevalue("clean_pg")
        return request.getfixturevalue("pg_settings")
    return request.getfixturevalue("sqlite_settings")


AppFactory = Callable[..., "TestClient"]


# COLDREACH_TEST_PHASE=3: every app `make_client` builds is the phase-3 edge, backed by
# both gRPC services in-process (test_app_phase3_edge.py runs the black-box files so).
EDGE = os.environ.get("COLDREACH_TEST_PHASE") == "3"


@pytest.fixture
def make_client(settings: Settings) -> Iterator[AppFactory]:
    clients: list[TestClient] = []
    services = ExitStack()

    def factory(
        mailer: Mailer | None = None,
        settings_: Settings | None = None,
        workspace: str | None = "test",
        **kwargs: Any,
    ) -> TestClient:
        """A running app whose requests carry a key of `workspace` with every scope."""
        from fastapi.testclient import TestClient

        chosen = settings_ or settings
        running = None
        if EDGE:
            from rpc_harness import ANSWER_DEADLINE_S, running_services

            # The black-box files check answers: their calls get a deadline to match.
            chosen = chosen.with_(grpc_deadline_s=ANSWER_DEADLINE_S)
            running = services.enter_context(running_services(chosen, mailer=mailer))
            chosen = running.edge_settings(chosen)
        app = create_app(chosen, mailer=mailer, **kwargs)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        if running is not None:
            # The Campaign Service's queue is the one that sends: a test that holds
            # `ctx.queue` holds that one.
            ctx = app.state.ctx
            ctx.queue.stop()
            ctx.queue = running.queue
        return authorize(client, workspace) if workspace is not None else client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)
    services.close()


@pytest.fixture
def api(make_client: AppFactory) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def kafka_mock() -> Iterator[MockCluster]:
    """librdkafka's mock cluster, in this process for the session (app_kafka.py)."""
    cluster = MockCluster(brokers=3)
    yield cluster
    cluster.close()


@pytest.fixture
def kafka_settings(pg_settings: Settings, kafka_mock: MockCluster, clean_pg: None) -> Settings:
    """QUEUE_BACKEND=kafka on the mock cluster, with topics and a group of this test's own."""
    return pg_settings.with_(queue_backend="kafka", kafka=fresh_kafka(kafka_mock.bootstrap_servers))


@pytest.fixture(scope="session")
def sharded_base() -> Iterator[Settings]:
    """Two PostgreSQL shards and a directory, migrated, for the session."""
    shards = (create_database("app3_shard1"), create_database("app3_shard2"))
    directory = create_database("app3_directory")
    base = Settings(
        database_url=directory,  # the database of global data, as Settings.from_env sets it
        db_shards=shards,
        db_directory_url=directory,
        auto_migrate=False,
        db_pool_size=4,
        db_max_overflow=4,
        shard_map_ttl_s=0.0,
        retry_backoff_base_s=0.0,
        sweep_interval_s=3600.0,
    )
    try:
        upgrade_all(base)
        yield base
    finally:
        for url in (*shards, directory):
            drop_database(url)


SHARD_TABLES = f"{TABLES}, kafka_outbox"
DIRECTORY_TABLES = f"{SHARD_TABLES}, client_email_index, idempotency_keys, bucket_map"


@pytest.fixture
def sharded(sharded_base: Settings, kafka_mock: MockCluster, tmp_path: Path) -> Settings:
    """Empty shards and directory (ids from 1 again), on Kafka's mock cluster; the
    services' calls get the deadline of tests that check answers (rpc_harness)."""
    from rpc_harness import ANSWER_DEADLINE_S

    for url, tables in (
        *((u, SHARD_TABLES) for u in sharded_base.db_shards),
        (sharded_base.database_url, DIRECTORY_TABLES),
    ):
        db = Database(sharded_base.with_(database_url=url))
        with db.primary.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            if tables == DIRECTORY_TABLES:
                conn.execute(text("SELECT setval('global_ids', 1, false)"))
        db.dispose()
    return sharded_base.with_(
        queue_backend="kafka",
        kafka=fresh_kafka(kafka_mock.bootstrap_servers),
        data_dir=tmp_path,
        mail_outbox=None,
        grpc_deadline_s=ANSWER_DEADLINE_S,
    )


def pytest_configure(config: pytest.Config) -> None:
    # Starlette's TestClient still runs on httpx; the notice is about a future switch.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with")
