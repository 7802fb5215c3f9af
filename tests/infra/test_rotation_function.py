"""The master password's rotation function: the four steps against a Secrets Manager that
keeps versions and stages as AWS documents them, a database that checks passwords, and
this machine's PostgreSQL for the one statement it sends; and its archive runs alone."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg8000.native
import pytest

from components import rotation, rotation_function
from components.rotation_function import EXCLUDED_CHARACTERS, PASSWORD_LENGTH, lambda_handler

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-credentials-AbCdEf"
MASTER = {
    "engine": "postgres",
    "host": "db.example.internal",
    "port": 5432,
    "dbname": "coldreach",
    "username": "coldreach_admin",
    "password": "old-password",
}
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class NotFound(Exception):
    pass


class SecretsManager:
    """Versions and staging labels as Secrets Manager keeps them: RotateSecret leaves the
    token as an AWSPENDING version without a value; the function fills and promotes it."""

    class exceptions:  # boto3 spells it so
        ResourceNotFoundException = NotFound

    def __init__(self, value: dict[str, Any], rotation_enabled: bool = True) -> None:
        self.values: dict[str, str | None] = {"v1": json.dumps(value)}
        self.stages: dict[str, list[str]] = {"v1": ["AWSCURRENT"]}
        self.rotation_enabled = rotation_enabled

    def start_rotation(self, token: str) -> None:
        for stages in self.stages.values():
            if "AWSPENDING" in stages:
                stages.remove("AWSPENDING")
        self.values[token] = None
        self.stages[token] = ["AWSPENDING"]

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        assert SecretId == ARN
        return {
            "RotationEnabled": self.rotation_enabled,
            "VersionIdsToStages": {v: list(s) for v, s in self.stages.items() if s},
        }

    def get_secret_value(self, SecretId: str, VersionStage: str, VersionId: str = "") -> dict:
        for version, stages in self.stages.items():
            if VersionStage in stages and VersionId in ("", version):
                if self.values[version] is None:
                    break
                return {"SecretString": self.values[version], "VersionId": version}
        raise NotFound(f"{VersionStage} {VersionId}")

    def get_random_password(self, PasswordLength: int, ExcludeCharacters: str) -> dict:
        alphabet = [chr(c) for c in range(33, 127) if chr(c) not in ExcludeCharacters]
        return {"RandomPassword": "".join(secrets.choice(alphabet) for _ in range(PasswordLength))}

    def put_secret_value(
        self, SecretId: str, ClientRequestToken: str, SecretString: str, VersionStages: list[str]
    ) -> None:
        assert self.values.get(ClientRequestToken) is None, "a version's value never changes"
        self.values[ClientRequestToken] = SecretString
        self.stages[ClientRequestToken] = list(VersionStages)

    def update_secret_version_stage(
        self, SecretId: str, VersionStage: str, MoveToVersionId: str, RemoveFromVersionId: str
    ) -> None:
        assert VersionStage == "AWSCURRENT"
        self.stages[RemoveFromVersionId].remove("AWSCURRENT")
        for stages in self.stages.values():
            if "AWSPREVIOUS" in stages:
                stages.remove("AWSPREVIOUS")
        self.stages[RemoveFromVersionId].append("AWSPREVIOUS")
        self.stages[MoveToVersionId] = ["AWSCURRENT"]

    def current(self) -> dict[str, Any]:
        return json.loads(self.get_secret_value(ARN, "AWSCURRENT")["SecretString"])


class Database:
    """Signs a user in only with the user's password; applies ALTER USER ... PASSWORD."""

    ALTER = re.compile(r"^ALTER USER \"([^\"]+)\" WITH PASSWORD '((?:[^']|'')*)'$")

    def __init__(self, user: str, password: str) -> None:
        self.passwords = {user: password}
        self.statements: list[str] = []

    def connect(self, secret: dict[str, Any]) -> Any:
        if self.passwords.get(secret["username"]) != secret["password"]:
            return None
        database = self

        class Connection:
            def run(self, sql: str) -> None:
                database.statements.append(sql)
                match = Database.ALTER.match(sql)
                if match:
                    database.passwords[match[1]] = match[2].replace("''", "'")

            def close(self) -> None:
                pass

        return Connection()


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Database:
    database = Database(MASTER["username"], MASTER["password"])
    monkeypatch.setattr(rotation_function, "connect", database.connect)
    return database


def _rotate(client: SecretsManager, token: str, steps: tuple[str, ...] = STEPS) -> None:
    for step in steps:
        event = {"SecretId": ARN, "ClientRequestToken": token, "Step": step}
        lambda_handler(event, None, client=client)


def _password_changes(db: Database) -> list[str]:
    return [s for s in db.statements if s.startswith("ALTER USER")]


def test_a_rotation_changes_the_password_in_the_database_and_the_secret(db: Database) -> None:
    client = SecretsManager(MASTER)
    client.start_rotation("t1")
    _rotate(client, "t1")
    new = client.current()
    assert new["password"] != MASTER["password"]
    assert db.passwords[MASTER["username"]] == new["password"]
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in MASTER.items() if k != "password"
    }
    assert len(new["password"]) == PASSWORD_LENGTH
    assert not set(new["password"]) & set(EXCLUDED_CHARACTERS)
    assert client.stages == {"v1": ["AWSPREVIOUS"], "t1": ["AWSCURRENT"]}
    assert len(_password_changes(db)) == 1
    # The next rotation signs in with the password the last one set.
    client.start_rotation("t2")
    _rotate(client, "t2")
    assert db.passwords[MASTER["username"]] == client.current()["password"]
    assert client.stages["t1"] == ["AWSPREVIOUS"] and client.stages["v1"] == []


def test_every_step_is_safe_to_repeat(db: Database) -> None:
    """Secrets Manager retries a failed step; a repeated one changes nothing twice."""
    client = SecretsManager(MASTER)
    client.start_rotation("t1")
    for step in STEPS:
        _rotate(client, "t1", (step, step))
    assert len(_password_changes(db)) == 1
    assert db.passwords[MASTER["username"]] == client.current()["password"]
    # Once current, the token's steps do nothing at all.
    _rotate(client, "t1")
    assert len(_password_changes(db)) == 1


def test_a_rotation_cut_off_after_set_secret_completes_on_retry(db: Database) -> None:
    client = SecretsManager(MASTER)
    client.start_rotation("t1")
    _rotate(client, "t1", ("createSecret", "setSecret"))
    # The database has the pending password; the secret still says the old one.
    pending = json.loads(client.get_secret_value(ARN, "AWSPENDING", "t1")["SecretString"])
    assert db.passwords[MASTER["username"]] == pending["password"]
    assert client.current()["password"] == MASTER["password"]
    _rotate(client, "t1")
    assert client.current()["password"] == pending["password"]
    assert len(_password_changes(db)) == 1


def test_set_secret_falls_back_to_the_previous_password(db: Database) -> None:
    client = SecretsManager(MASTER)
    client.start_rotation("t1")
    _rotate(client, "t1")
    # The database went back to the previous password (a restore, say).
    db.passwords[MASTER["username"]] = MASTER["password"]
    client.start_rotation("t2")
    _rotate(client, "t2")
    assert db.passwords[MASTER["username"]] == client.current()["password"]


def test_set_secret_stops_when_no_known_password_signs_in(db: Database) -> None:
    client = SecretsManager(MASTER)
    db.passwords[MASTER["username"]] = "changed-by-hand"
    client.start_rotation("t1")
    with pytest.raises(ValueError, match="neither the current nor the previous"):
        _rotate(client, "t1")
    assert client.current()["password"] == MASTER["password"], "the secret stays as it was"
    assert _password_changes(db) == []


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("disabled", "rotation is not enabled"),
        ("unknown-token", "is not a version"),
        ("not-pending", "not pending rotation"),
        ("bad-step", "unknown step"),
    ],
)
def test_calls_it_must_refuse(db: Database, case: str, message: str) -> None:
    client = SecretsManager(MASTER, rotation_enabled=case != "disabled")
    client.start_rotation("t1")
    token, step = "t1", "createSecret"
    if case == "unknown-token":
        token = "t9"
    if case == "not-pending":
        client.stages["t1"] = ["AWSPREVIOUS"]
    if case == "bad-step":
        step = "dropDatabase"
    with pytest.raises(ValueError, match=message):
        lambda_handler({"SecretId": ARN, "ClientRequestToken": token, "Step": step}, None, client)


def test_a_pending_version_for_another_user_is_refused(db: Database) -> None:
    client = SecretsManager(MASTER)
    client.start_rotation("t1")
    client.values["t1"] = json.dumps({**MASTER, "username": "postgres", "password": "x"})
    with pytest.raises(ValueError, match="another user or host"):
        _rotate(client, "t1", ("setSecret",))
    assert _password_changes(db) == []


@pytest.fixture
def pg_role(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway login role on this machine's PostgreSQL (trust auth, no TLS)."""
    monkeypatch.setenv("DB_TLS", "disable")
    role = f"iamdb_rotation_{secrets.token_hex(4)}"
    admin = pg8000.native.Connection("postgres", host="127.0.0.1", database="postgres")
    admin.run(f"CREATE ROLE {role} LOGIN PASSWORD 'before'")
    try:
        yield role
    finally:
        admin.run(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_the_statement_changes_a_real_password_whatever_it_holds(pg_role: str) -> None:
    admin = {"host": "127.0.0.1", "port": 5432, "dbname": "postgres", "username": "postgres",
             "password": ""}  # fmt: skip
    conn = rotation_function.connect(admin)
    assert conn is not None, "connect() reaches the local PostgreSQL without TLS"

    def verifier() -> str:
        rows = conn.run("SELECT rolpassword FROM pg_authid WHERE rolname = :r", r=pg_role)
        assert rows is not None
        [[value]] = rows
        return str(value)

    before = verifier()
    # Quotes and backslashes are never generated, but must not break out either.
    conn.run(rotation_function.alter_password_sql(pg_role, 'it\'s a \\ "test"; DROP ROLE x'))
    after = verifier()
    conn.close()
    assert after != before and after.startswith("SCRAM-SHA-256$")


def test_refused_sign_in_is_none_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_TLS", "disable")
    unreachable = {**MASTER, "host": "127.0.0.1", "port": 1}
    assert rotation_function.connect(unreachable) is None


def test_the_archive_runs_on_its_own(tmp_path: Path) -> None:
    """What Lambda gets: the handler and the driver, importable with nothing but the
    standard library and the runtime's boto3 (stubbed here), byte-for-byte stable."""
    archive = rotation.package(tmp_path / "build")
    assert rotation.package(tmp_path / "build") == archive, "the same bytes, the same name"
    names = zipfile.ZipFile(archive).namelist()
    assert "rotation_function.py" in names
    assert {n.split("/")[0] for n in names} >= {"pg8000", "scramp", "asn1crypto", "dateutil"}
    assert not [n for n in names if n.endswith(".pyc") or n.endswith("/direct_url.json")]
    stub = tmp_path / "runtime"
    stub.mkdir()
    (stub / "boto3.py").write_text("def client(*a, **k):\n    raise RuntimeError\n")
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import rotation_function, pg8000.native\n"
        "assert rotation_function.lambda_handler and pg8000.native.Connection\n"
        "print(pg8000.native.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code, str(archive), str(stub)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().startswith(str(archive))
