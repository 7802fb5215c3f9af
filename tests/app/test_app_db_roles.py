"""Database access without static passwords: RDS IAM tokens per connection, and the
least-privilege roles the bootstrap command creates (this machine's PostgreSQL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from app_helpers import PG_ADMIN, authorize, create_database, drop_database
from fastapi.testclient import TestClient
from moto import mock_aws
from openapi_server import bootstrap_db
from openapi_server.config import ConfigError, Settings
from openapi_server.db import Database
from openapi_server.main import create_app
from openapi_server.migrate import upgrade
from openapi_server.rds_auth import RdsAuthToken
from sqlalchemy import event, text
from sqlalchemy.engine import URL


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


class RecordingRds:
    """A real boto3 RDS client (presigning is local) that records every token it makes."""

    def __init__(self) -> None:
        self.client = boto3.client("rds", region_name="eu-west-1")
        self.tokens: list[str] = []

    def generate_db_auth_token(self, **kwargs: Any) -> str:
        token = self.client.generate_db_auth_token(**kwargs)
        self.tokens.append(token)
        return token


def _record_passwords(engine: Any) -> list[str]:
    passwords: list[str] = []

    @event.listens_for(engine, "do_connect")
    def _seen(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        passwords.append(cparams.get("password"))

    return passwords


def test_each_new_connection_authenticates_with_a_fresh_iam_token(aws, pg_url: URL) -> None:
    rds = RecordingRds()
    settings = Settings(database_url=pg_url, db_iam_auth=True, aws_region="eu-west-1")
    db = Database(settings, token_source=RdsAuthToken("eu-west-1", client=rds))
    passwords = _record_passwords(db.primary)
    try:
        with db.primary.connect() as first, db.primary.connect() as second:
            assert first.execute(text("SELECT current_user")).scalar() == pg_url.username
            second.execute(text("SELECT 1"))
    finally:
        db.dispose()
    assert len(passwords) == 2 and passwords == rds.tokens  # one token per connection
    token = passwords[0]
    assert token.startswith(f"{pg_url.host}:{pg_url.port}/?Action=connect")
    assert f"DBUser={pg_url.username}" in token and "X-Amz-Expires=900" in token


def test_the_app_runs_on_the_token_path(aws, pg_settings: Settings, clean_pg: None) -> None:
    app = create_app(pg_settings.with_(db_iam_auth=True, aws_region="eu-west-1"))
    with TestClient(app) as api:
        authorize(api)
        engine = app.state.ctx.db.primary
        engine.dispose()
        passwords = _record_passwords(engine)
        r = api.post("/clients", json={"name": "I", "email": "iam@example.com"})
        assert r.status_code == 201
    assert passwords and all("Action=connect" in p for p in passwords)


def test_iam_settings_require_tls_a_user_and_postgresql() -> None:
    base = {"DB_IAM_AUTH": "1", "DB_HOST": "db.example.internal", "DB_USER": "coldreach_app"}
    s = Settings.from_env(base)
    assert s.db_iam_auth and s.database_url.query["sslmode"] == "require"
    full = Settings.from_env({**base, "DB_SSLMODE": "verify-full"})
    assert full.database_url.query["sslmode"] == "verify-full"
    for bad, name in (
        ({**base, "DB_SSLMODE": "prefer"}, "DB_SSLMODE"),
        ({"DB_IAM_AUTH": "1", "DB_HOST": "db.example.internal"}, "DB_USER"),
        ({"DB_IAM_AUTH": "1"}, "DB_IAM_AUTH"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(bad)
    assert not Settings.from_env({}).db_iam_auth


@pytest.fixture
def roles() -> Iterator[dict[str, str]]:
    suffix = secrets.token_hex(4)
    names = {
        "owner": f"cr_test_owner_{suffix}",
        "app": f"cr_test_app_{suffix}",
        "iam": f"cr_test_iam_{suffix}",  # stands in for RDS's rds_iam
    }
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{names["iam"]}"')
    url = create_database("coldreach_app_test_roles")
    names["url"] = url.render_as_string(hide_password=False)
    yield names
    drop_database(url)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for key in ("owner", "app", "iam"):
            conn.execute(f'DROP ROLE IF EXISTS "{names[key]}"')


def _as(roles: dict[str, str], who: str) -> URL:
    from sqlalchemy.engine import make_url

    return make_url(roles["url"]).set(username=roles[who])


def test_bootstrap_creates_least_privilege_roles(
    roles: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", roles["url"])
    monkeypatch.setenv("DB_OWNER_USER", roles["owner"])
    monkeypatch.setenv("DB_APP_USER", roles["app"])
    monkeypatch.setenv("DB_IAM_ROLE", roles["iam"])
    assert bootstrap_db.main() == 0
    assert bootstrap_db.main() == 0  # idempotent
    assert f"created role {roles['owner']}" in capsys.readouterr().out

    # Migrations run as the schema owner.
    upgrade(Settings(database_url=_as(roles, "owner"), auto_migrate=False))

    runtime = _as(roles, "app").render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(runtime, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO workspaces (name, created_at) VALUES ('w', now()) RETURNING id"
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO clients (name, email, email_key, status, workspace_id, created_at,"
            " updated_at) VALUES ('R', 'r@example.com', 'r@example.com', 'active', %s, now(),"
            " now())",
            (row[0],),
        )
        conn.execute("UPDATE clients SET name = 'R2' WHERE email_key = 'r@example.com'")
        assert conn.execute("SELECT name FROM clients").fetchall() == [("R2",)]
        conn.execute("DELETE FROM clients")
        conn.execute("DELETE FROM workspaces")
        for ddl in (
            "CREATE TABLE intruder (id int)",
            "DROP TABLE clients",
            "ALTER TABLE clients ADD COLUMN x int",
            "TRUNCATE clients",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
        iam_members = conn.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
            " JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = %s ORDER BY 1",
            (roles["iam"],),
        ).fetchall()
        assert sorted(row[0] for row in iam_members) == sorted([roles["app"], roles["owner"]])

    # The services run as the runtime role: sequences, every table, readiness.
    settings = Settings(database_url=_as(roles, "app"), auto_migrate=False)
    with TestClient(create_app(settings)) as api:
        assert api.get("/readyz").json() == {"status": "ready"}
        authorize(api)  # the runtime role writes the key too
        cid = api.post("/clients", json={"name": "A", "email": "a@example.com"}).json()["id"]
        assert api.post("/tasks", json={"client_id": cid, "title": "T"}).status_code == 201
        sent = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
        assert sent.status_code == 202
        assert api.delete(f"/clients/{cid}").status_code == 204
