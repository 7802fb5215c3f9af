"""Apply the database migrations: `python -m openapi_server.migrate`.

Runs Alembic `upgrade head` against the database the environment points at
(DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, or the embedded
SQLite file). Safe to run from several tasks at once: on PostgreSQL an advisory
lock serializes them, and a database already at head is left untouched.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from .config import Settings, settings_or_exit

log = logging.getLogger("openapi_server.migrate")

MIGRATIONS = Path(__file__).parent / "migrations"
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


def upgrade_when_reachable(settings: Settings, revision: str = "head") -> None:
    """`upgrade`, retried while the database cannot be reached (it may be starting too).

    `DB_CONNECT_ATTEMPTS` attempts, waits doubling from `DB_CONNECT_BACKOFF_S`, one
    warning line per failed attempt; then `DatabaseUnreachable`.
    """
    delay = settings.db_connect_backoff_s
    for attempt in range(1, settings.db_connect_attempts + 1):
        try:
            upgrade(settings, revision)
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    args = sys.argv[1:] if argv is None else argv
    revision = args[0] if args else "head"
    settings = settings_or_exit()
    upgrade_or_exit(settings, revision)
    log.info("database at %s", revision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
