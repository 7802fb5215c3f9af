"""Alembic environment of the directory's own tables (version table
`alembic_version_directory`, beside the app schema's `alembic_version`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from openapi_server.config import Settings
from openapi_server.db import make_engine
from openapi_server.sharding.directory import VERSION_TABLE, DirectoryBase

# Serializes concurrent upgrades of one directory (a 64-bit constant of its own).
DIRECTORY_LOCK_ID = 7_305_148_212

config = context.config
target_metadata = DirectoryBase.metadata


def run_migrations_online() -> None:
    settings: Settings = config.attributes.get("settings") or Settings.from_env()
    engine = make_engine(settings.database_url, settings.with_(db_pool_size=1, db_max_overflow=0))
    try:
        with engine.connect() as conn:
            is_pg = conn.dialect.name == "postgresql"
            if is_pg:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": DIRECTORY_LOCK_ID})
                conn.commit()
            try:
                context.configure(
                    connection=conn,
                    target_metadata=target_metadata,
                    version_table=VERSION_TABLE,
                    render_as_batch=conn.dialect.name == "sqlite",
                )
                with context.begin_transaction():
                    context.run_migrations()
                conn.commit()
            finally:
                if is_pg:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DIRECTORY_LOCK_ID})
                    conn.commit()
    finally:
        engine.dispose()


run_migrations_online()
