"""Migrations of a sharded deployment: the app's schema on every shard, the directory's two
chains (the app's global tables and its own, directory.py)."""

from __future__ import annotations

from ..config import Settings, default_directory_url
from ..migrate import upgrade
from .directory import upgrade_directory


def upgrade_all(settings: Settings) -> None:
    """Every shard and the directory to head; on one database, that database."""
    if not settings.db_shards:
        upgrade(settings)
        return
    for url in settings.db_shards:
        upgrade(settings.with_(database_url=url, database_read_url=None))
    directory = settings.db_directory_url or default_directory_url(settings.db_shards[0])
    upgrade_directory(directory, settings)
