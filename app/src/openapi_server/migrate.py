"""Apply the database migrations: `python -m openapi_server.migrate` (`coldreach-app migrate`).

Runs Alembic `upgrade head` against the database the environment points at
(DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, or the embedded
SQLite file). With DB_SHARD_n set (phase 3): the directory (the app's schema and the
directory's own tables) and then every shard, one line per database; the first database
that fails ends the run with status 1, named. Safe to run from several tasks at once: on
PostgreSQL an advisory lock serializes them, and a database already at head is left
untouched.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from .config import Settings, default_directory_url, settings_or_exit

log = logging.getLogger("openapi_server.migrate")

MIGRATIONS = Path(__file__).parent / "migrations"
# The directory's own tables (bucket map, email index, ids...): sharding/directory.py.
# Named by path: that package imports this module, not the other way round.
DIRECTORY_MIGRATIONS = Path(__file__).parent / "sharding" / "migrations"
BACKOFF_MAX_S = 30.0


class DatabaseUnreachable(RuntimeError):
    """The database refused every connection attempt at start; the message is one line."""


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["settings"] = settings
    return cfg


def head_revision(settings: Settings) -> str | None:
    """The revision the code expects: the head of the migrations it ships."""
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def upgrade_directory(settings: Settings) -> None:
    """A sharded deployment's directory (`settings.database_url`) to head: the app's schema
    (its global tables are the ones used) and the directory's own chain."""
    upgrade(settings)
    cfg = Config()
    cfg.set_main_option("script_location", str(DIRECTORY_MIGRATIONS))
    cfg.attributes["settings"] = settings
    command.upgrade(cfg, "head")


def sharded_databases(settings: Settings) -> list[tuple[str, Settings, Callable[[Settings], None]]]:
    """What `migrate` brings to head with DB_SHARD_n: (name, settings on that database,
    how), the directory first, then the shards in order."""
    assert settings.db_shards
    directory = settings.db_directory_url or default_directory_url(settings.db_shards[0])
    out: list[tuple[str, Settings, Callable[[Settings], None]]] = [
        (
            "directory",
            settings.with_(database_url=directory, database_read_url=None),
            upgrade_directory,
        )
    ]
    for n, url in enumerate(settings.db_shards, start=1):
        out.append(
            (f"shard {n}", settings.with_(database_url=url, database_read_url=None), upgrade)
        )
    return out


def upgrade_when_reachable(
    settings: Settings,
    revision: str = "head",
    how: Callable[[Settings], None] | None = None,
) -> None:
    """`upgrade` (or `how`), retried while the database cannot be reached (it may be
    starting too).

    `DB_CONNECT_ATTEMPTS` attempts, waits doubling from `DB_CONNECT_BACKOFF_S`, one
    warning line per failed attempt; then `DatabaseUnreachable`.
    """
    delay = settings.db_connect_backoff_s
    for attempt in range(1, settings.db_connect_attempts + 1):
        try:
            if how is None:
                upgrade(settings, revision)
            else:
                how(settings)
            return
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            if attempt == settings.db_connect_attempts:
                raise DatabaseUnreachable(
                    f"database unreachable after {attempt} attempts, giving up: {reason}"
                ) from None
            log.warning(
                "database unreachable (attempt %d/%d): %s; retrying in %.1f s",
                attempt,
                settings.db_connect_attempts,
                reason,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


def upgrade_or_exit(settings: Settings, revision: str = "head") -> None:
    """For commands: a database that never answers ends the process with status 1."""
    try:
        upgrade_when_reachable(settings, revision)
    except DatabaseUnreachable as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


def upgrade_sharded(settings: Settings) -> int:
    """The directory and every shard to head, one line each; 1 naming the first failure."""
    targets = sharded_databases(settings)
    for n, (name, on, how) in enumerate(targets, start=1):
        where = f"{name} ({on.database_url.render_as_string(hide_password=True)})"
        log.info("[%d/%d] %s: migrating", n, len(targets), where)
        try:
            upgrade_when_reachable(on, how=how)
        except Exception as exc:  # any failure: say which database, stop there
            reason = " ".join(str(exc).split())[:500]
            log.error("[%d/%d] %s: migration failed: %s", n, len(targets), where, reason)
            if n > 1:
                log.error("databases before it are at head; none after it was touched")
            return 1
        log.info("[%d/%d] %s: at head", n, len(targets), where)
    log.info("all %d databases at head", len(targets))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    args = sys.argv[1:] if argv is None else argv
    revision = args[0] if args else "head"
    settings = settings_or_exit()
    if settings.db_shards:
        if revision != "head":
            log.error(
                "with DB_SHARD_n set, migrate takes no REVISION: the directory and every "
                "shard go to head"
            )
            return 2
        return upgrade_sharded(settings)
    upgrade_or_exit(settings, revision)
    log.info("database at %s", revision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
