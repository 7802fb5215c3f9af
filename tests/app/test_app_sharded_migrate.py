"""`coldreach-app migrate` with DB_SHARD_n: the directory and every shard to head."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from app_helpers import create_database, drop_database
from app_sharded import shard_env
from openapi_server.cli import main as cli
from openapi_server.config import Settings
from openapi_server.migrate import DIRECTORY_MIGRATIONS, head_revision
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL


@pytest.fixture
def databases() -> Iterator[tuple[URL, URL, URL]]:
    """Two empty shards and an empty directory, dropped afterwards."""
    made = [create_database(f"app3_migrate_{name}") for name in ("shard1", "shard2", "dir")]
    try:
        yield made[0], made[1], made[2]
    finally:
        for url in made:
            drop_database(url)


def _env(monkeypatch: pytest.MonkeyPatch, shard1: URL, shard2: URL, directory: URL) -> None:
    shard_env(monkeypatch, (shard1, shard2), directory)
    monkeypatch.setenv("AUTO_MIGRATE", "0")
    monkeypatch.setenv("DB_CONNECT_ATTEMPTS", "1")


def _versions(url: URL) -> dict[str, str | None]:
    """Each Alembic version table of the database, and its revision."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            return {
                t: conn.execute(text(f"SELECT version_num FROM {t}")).scalar()
                for t in tables
                if t.startswith("alembic_version")
            }
    finally:
        engine.dispose()


def test_migrate_brings_the_directory_and_every_shard_to_head_twice_over(
    databases: tuple[URL, URL, URL],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shard1, shard2, directory = databases
    _env(monkeypatch, shard1, shard2, directory)
    app_head = head_revision(Settings(database_url=shard1))
    cfg = Config()
    cfg.set_main_option("script_location", str(DIRECTORY_MIGRATIONS))
    directory_head = ScriptDirectory.from_config(cfg).get_current_head()

    for _run in range(2):  # the second run finds everything at head and changes nothing
        caplog.clear()
        assert cli(["migrate"]) == 0
        lines = [r.getMessage() for r in caplog.records]
        for n, name in enumerate(("directory", "shard 1", "shard 2"), start=1):
            assert any(line.startswith(f"[{n}/3] {name} (") and "at head" in line for line in lines)
        assert "all 3 databases at head" in lines

    assert _versions(shard1) == {"alembic_version": app_head}
    assert _versions(shard2) == {"alembic_version": app_head}
    assert _versions(directory) == {
        "alembic_version": app_head,
        "alembic_version_directory": directory_head,
    }
    # A REVISION would mean different things on the shards and the directory.
    assert cli(["migrate", "0001"]) == 2


def test_migrate_names_the_database_that_failed_and_exits_1(
    databases: tuple[URL, URL, URL],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shard1, _shard2, directory = databases
    missing = shard1.set(database=f"app3_migrate_missing_{secrets.token_hex(4)}")
    _env(monkeypatch, shard1, missing, directory)
    assert cli(["migrate"]) == 1
    failed = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failed[0].startswith("[3/3] shard 2 (") and str(missing.database) in failed[0]
    assert "migration failed" in failed[0]
    # The ones before it were migrated.
    assert _versions(shard1) == {"alembic_version": head_revision(Settings(database_url=shard1))}
