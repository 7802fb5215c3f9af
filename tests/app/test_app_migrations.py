"""0002 on a database with data: existing rows move to a `default` workspace, nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from app_helpers import bearer, create_database, drop_database, issue_key
from fastapi.testclient import TestClient
from openapi_server.config import Settings
from openapi_server.main import create_app
from openapi_server.migrate import alembic_config, upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        url = URL.create("sqlite+pysqlite", database=str(tmp_path / "old.db"))
        yield Settings(database_url=url, data_dir=tmp_path, auto_migrate=False)
        return
    url = create_database("coldreach_app_test_0002")
    try:
        yield Settings(database_url=url, data_dir=tmp_path, auto_migrate=False)
    finally:
        drop_database(url)


def _seed_0001(settings: Settings) -> None:
    upgrade(settings, "0001")
    now = datetime.now(UTC).replace(tzinfo=None)
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO clients (name, email, email_key, status, created_at, updated_at)"
                " VALUES ('Ann', 'Ann@example.com', 'ann@example.com', 'active', :n, :n),"
                " ('Bob', 'bob@example.com', 'bob@example.com', 'unsubscribed', :n, :n)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO tasks (client_id, title, done, created_at, updated_at)"
                " VALUES (1, 'Call Ann', false, :n, :n)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO email_messages (client_id, to_address, subject, body, status,"
                " attempts, idempotency_key, request_hash, needs_reconciliation, created_at,"
                " updated_at) VALUES (1, 'Ann@example.com', 'Hi', 'B', 'sent', 1, 'old-key',"
                " 'h', false, :n, :n)"
            ),
            {"n": now},
        )
        conn.execute(
            text(
                "INSERT INTO suppressions (email_key, reason, created_at) VALUES"
                " ('bob@example.com', 'unsubscribed', :n), ('gone@example.com', 'bounced', :n)"
            ),
            {"n": now},
        )
    engine.dispose()


def test_existing_rows_move_to_the_default_workspace(empty_db: Settings) -> None:
    _seed_0001(empty_db)
    upgrade(empty_db)
    engine = create_engine(empty_db.database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, name FROM workspaces")).all() == [(1, "default")]
        for table in ("clients", "tasks", "email_messages"):
            assert conn.execute(text(f"SELECT DISTINCT workspace_id FROM {table}")).all() == [(1,)]
        # Bounces stay global; the unsubscribe belongs to the workspace it was made in.
        assert conn.execute(text("SELECT email_key, reason FROM suppressions")).all() == [
            ("gone@example.com", "bounced")
        ]
        assert conn.execute(
            text("SELECT workspace_id, email_key FROM workspace_unsubscribes")
        ).all() == [(1, "bob@example.com")]
    engine.dispose()

    with TestClient(create_app(empty_db.with_(mail_outbox=None))) as api:
        key = bearer(issue_key(api, "default"))
        assert [c["name"] for c in api.get("/clients", headers=key).json()["items"]] == [
            "Ann",
            "Bob",
        ]
        assert api.get("/tasks", headers=key).json()["total"] == 1
        assert api.get("/email/1", headers=key).json()["status"] == "sent"
        assert api.get("/clients/1", headers=bearer(issue_key(api, "new"))).status_code == 404

    command.downgrade(alembic_config(empty_db), "0001")  # and back, with one workspace
    upgrade(empty_db)


def test_an_empty_database_gets_no_default_workspace(empty_db: Settings) -> None:
    upgrade(empty_db)
    engine = create_engine(empty_db.database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM workspaces")).scalar_one() == 0
    engine.dispose()
