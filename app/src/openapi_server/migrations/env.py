"""Alembic environment: the URL comes from the same settings as the app."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from openapi_server.config import Settings
from openapi_server.db import Base, make_engine

# Any 64-bit constant: serializes concurrent `migrate` runs (several tasks starting at once).
MIGRATION_LOCK_ID = 7_305_148_211

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return

    settings = config.attributes.get("settings") or Settings.from_env()
    engine = make_engine(settings.database_url, settings.with_(db_pool_size=1, db_max_overflow=0))
    try:
        with engine.connect() as conn:
            is_pg = conn.dialect.name == "postgresql"
            is_sqlite = conn.dialect.name == "sqlite"
            if is_pg:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
                conn.commit()
            if is_sqlite:
                # Batch migrations copy a table, drop the old one and rename the copy; with
                # foreign keys on, the drop would cascade into the rows that point at it.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            try:
                context.configure(
                    connection=conn,
                    target_metadata=target_metadata,
                    render_as_batch=is_sqlite,
                )
                with context.begin_transaction():
                    context.run_migrations()
                conn.commit()
                if is_sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
            finally:
                if is_pg:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
                    conn.commit()
                if is_sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=str(Settings.from_env().database_url), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
