"""Readiness means the schema is at the migrations' head and the broker answers; database
errors anywhere are a 503 with a clear body, never a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_helpers import create_database, drop_database
from fastapi.testclient import TestClient
from openapi_server.config import Settings
from openapi_server.main import create_app
from openapi_server.migrate import upgrade
from sqlalchemy.engine import URL


@pytest.fixture
def empty_pg() -> Iterator[URL]:
    url = create_database("coldreach_app_test_empty")
    yield url
    drop_database(url)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_an_unmigrated_database_is_not_ready_and_routes_are_503(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("empty_pg")
        settings = Settings(database_url=url, data_dir=tmp_path, auto_migrate=False)
    else:
        settings = Settings.from_env({"DATA_DIR": str(tmp_path), "AUTO_MIGRATE": "0"})
    with TestClient(create_app(settings)) as api:
        r = api.get("/readyz")
        assert r.status_code == 503 and "migrat" in r.json()["status"], r.text
        for method, path, body in (
            ("GET", "/clients", None),
            ("POST", "/clients", {"name": "A", "email": "a@example.com"}),
            ("GET", "/email/1", None),
        ):
            # A well-formed key: checking it needs the database, which is not there yet.
            key = {"Authorization": "Bearer crk_0123456789ab_" + "x" * 43}
            r = api.request(method, path, json=body, headers=key)
            assert r.status_code == 503, (path, r.text)
            assert "migrat" in r.json()["detail"]
    upgrade(settings)
    with TestClient(create_app(settings)) as api:
        assert api.get("/readyz").json() == {"status": "ready"}


def test_readiness_checks_the_broker_when_one_is_configured(
    pg_settings: Settings, clean_pg: None
) -> None:
    down = pg_settings.with_(
        queue_backend="celery", redis_url=f"redis://127.0.0.1:{_closed_port()}/0"
    )
    with TestClient(create_app(down)) as api:
        r = api.get("/readyz")
        assert r.status_code == 503 and "broker" in r.json()["status"], r.text
    # Redis is up: a generous bound, so a slow answer on a loaded machine is not "down".
    up = pg_settings.with_(queue_backend="celery", broker_timeout_s=30.0)
    with TestClient(create_app(up)) as api:
        assert api.get("/readyz").json() == {"status": "ready"}
