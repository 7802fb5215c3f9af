"""Migrations of a sharded deployment: the app's schema on every shard, the directory's two
chains (the app's global tables and its own, directory.py)."""

from __future__ import annotations

from ..config import Settings
from ..migrate import sharded_databases, upgrade


def upgrade_all(settings: Settings) -> None:
    """The directory and every shard to head (`migrate.sharded_databases`); on one
    database, that database. `coldreach-app migrate` does the same, one line per database."""
    if not settings.db_shards:
        upgrade(settings)
        return
    for _name, on, how in sharded_databases(settings):
        how(on)
