"""Apply the database migrations: `python -m openapi_server.migrate`.

Runs Alembic `upgrade head` against the database the environment points at
(DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, or the embedded
SQLite file). Safe to run from several tasks at once: on PostgreSQL an advisory
lock serializes them, and a database already at head is left untouched.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from .config import Settings, settings_or_exit

MIGRATIONS = Path(__file__).parent / "migrations"


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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    args = sys.argv[1:] if argv is None else argv
    revision = args[0] if args else "head"
    settings = settings_or_exit()
    upgrade(settings, revision)
    logging.getLogger("openapi_server.migrate").info("database at %s", revision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
