"""Sharding: bucket function, shard map, settings, router and cross-shard keyset lists.

The router tests run on real PostgreSQL databases on the local server (two shards and a
directory, created for the module and dropped after).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from app_helpers import create_database, drop_database
from openapi_server.config import ConfigError, Settings
from openapi_server.db import Client, Workspace
from openapi_server.migrate import upgrade
from openapi_server.sharding import (
    BUCKETS,
    MOVING,
    BucketMoving,
    Placement,
    ShardMap,
    ShardRouter,
    bucket_of,
)
from openapi_server.sharding.directory import (
    MAX_GLOBAL_ID,
    BucketMapRow,
    IdAllocator,
    default_directory_url,
    place_bucket,
    upgrade_directory,
)
from openapi_server.sharding.merge import (
    Fetch,
    Key,
    decode_cursor,
    encode_cursor,
    merge_pages,
    shard_fetchers,
)
from sqlalchemy import Select, delete, select
from sqlalchemy.engine import URL


def test_bucket_of_is_the_same_in_every_process() -> None:
    """Routing must not depend on Python's per-process string hash salt."""
    ids = list(range(1, 2001, 7))
    script = (
        "import sys; from openapi_server.sharding import bucket_of; "
        "print(' '.join(str(bucket_of(int(i))) for i in sys.argv[1:]))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script, *map(str, ids)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.split()
        assert [int(b) for b in out] == [bucket_of(i) for i in ids]


def test_buckets_spread_clients_and_the_default_map_is_even_odd() -> None:
    counts = [0] * BUCKETS
    for client_id in range(1, 100_001):
        counts[bucket_of(client_id)] += 1
    assert min(counts) > 50 and max(counts) < 150  # ~98 per bucket
    shard_map = ShardMap.default(("1", "2"))
    assert {shard_map.default_shard(b) for b in range(0, BUCKETS, 2)} == {"1"}
    assert {shard_map.default_shard(b) for b in range(1, BUCKETS, 2)} == {"2"}
    for client_id in (1, 2, 3, 99, 123456):
        want = "1" if bucket_of(client_id) % 2 == 0 else "2"
        assert shard_map.shard_for(client_id) == want


def test_a_bucket_moves_without_rehashing_anyone_else() -> None:
    shard_map = ShardMap.default(("1", "2"))
    moved = shard_map.moved(4, "2")
    assert moved.placement(4) == Placement("2")
    changed = [b for b in range(BUCKETS) if moved.placement(b) != shard_map.placement(b)]
    assert changed == [4]
    with pytest.raises(ValueError, match="unknown shard"):
        shard_map.moved(4, "3")
    with pytest.raises(ValueError, match="outside"):
        shard_map.moved(BUCKETS, "1")


def test_shard_settings() -> None:
    s = Settings.from_env(
        {
            "DB_SHARD_2": "postgresql://u@h2/b",
            "DB_SHARD_1": "postgres://u@h1/a",
            "SHARD_MAP_TTL_S": "0.5",
        }
    )
    assert [u.host for u in s.db_shards] == ["h1", "h2"]
    assert s.db_shards[0].drivername == "postgresql+psycopg"
    assert s.db_directory_url is None and s.shard_map_ttl_s == 0.5
    assert Settings.from_env({}).db_shards == ()
    with pytest.raises(ConfigError, match="without gaps"):
        Settings.from_env({"DB_SHARD_1": "postgresql://h/a", "DB_SHARD_3": "postgresql://h/c"})
    with pytest.raises(ConfigError, match="DB_DIRECTORY"):
        Settings.from_env({"DB_DIRECTORY": "postgresql://h/d"})
    with pytest.raises(ConfigError, match="DB_SHARD_1"):
        Settings.from_env({"DB_SHARD_1": "mysql://h/a"})


def test_the_directory_defaults_to_a_database_beside_shard_one() -> None:
    from sqlalchemy.engine import make_url

    pg = default_directory_url(make_url("postgresql+psycopg://u:p@db1:5432/coldreach"))
    assert (pg.host, pg.database, pg.password) == ("db1", "coldreach_directory", "p")
    lite = default_directory_url(make_url("sqlite+pysqlite:///var/shard1.db"))
    assert lite.database == "var/directory.db"


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor((42,))) == (42,)
    assert decode_cursor(encode_cursor((7, 9))) == (7, 9)
    for bad in ("", "x" * 300, "!!!", encode_cursor(()), "WyJhIl0", "eyJhIjogMX0", "WzEuNV0"):
        with pytest.raises(ValueError, match="invalid cursor"):
            decode_cursor(bad)


def test_merge_takes_the_smallest_keys_of_every_shard() -> None:
    data = {"1": [1, 4, 5, 9], "2": [2, 3, 10]}

    def fetcher(rows: list[int]) -> Fetch[int]:
        return lambda after, limit: [r for r in rows if after is None or r > after[0]][:limit]

    fetchers = {name: fetcher(rows) for name, rows in data.items()}
    page = merge_pages(fetchers, key=lambda r: (r,), limit=3, after=None)
    assert page.items == [1, 2, 3] and page.after == (3,)
    page = merge_pages(fetchers, key=lambda r: (r,), limit=3, after=page.after)
    assert page.items == [4, 5, 9] and page.after == (9,)
    page = merge_pages(fetchers, key=lambda r: (r,), limit=3, after=page.after)
    assert page.items == [10] and page.after is None and page.cursor is None


# -- on real databases ----------------------------------------------------------------------


@dataclass
class Cluster:
    shards: list[URL]
    directory: URL

    def settings(self, **changes: object) -> Settings:
        return Settings(
            database_url=self.shards[0],
            auto_migrate=False,
            db_shards=tuple(self.shards),
            db_directory_url=self.directory,
            db_pool_size=2,
            db_max_overflow=2,
        ).with_(**changes)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    shards = [create_database("shards_router_s1"), create_database("shards_router_s2")]
    directory = create_database("shards_router_dir")
    try:
        for url in shards:
            upgrade(Settings(database_url=url, auto_migrate=False))
        upgrade_directory(directory)
        yield Cluster(shards, directory)
    finally:
        for url in (*shards, directory):
            drop_database(url)


@pytest.fixture
def router(cluster: Cluster) -> Iterator[ShardRouter]:
    r = ShardRouter.from_settings(cluster.settings(shard_map_ttl_s=0.0))
    with r.directory() as s:
        s.execute(delete(BucketMapRow))
        s.commit()
    for db in r.shards().values():
        with db.session() as s:
            s.execute(delete(Client))
            if s.get(Workspace, 1) is None:  # reference table: on every shard
                s.add(Workspace(id=1, name="acme"))
            s.commit()
    yield r
    r.dispose()


def _add_client(router: ShardRouter, client_id: int) -> None:
    now = datetime.now(UTC)
    with router.session_for(client_id) as s:
        s.add(
            Client(
                id=client_id,
                workspace_id=1,
                name=f"c{client_id}",
                email=f"c{client_id}@example.com",
                email_key=f"c{client_id}@example.com",
                created_at=now,
                updated_at=now,
            )
        )
        s.commit()


def _ids_on(router: ShardRouter, shard: str) -> set[int]:
    with router.shards()[shard].session() as s:
        return set(s.scalars(select(Client.id)))


def test_router_writes_each_client_to_its_buckets_shard(router: ShardRouter) -> None:
    ids = router.allocate_ids(40)
    for client_id in ids:
        _add_client(router, client_id)
    for shard in ("1", "2"):
        on_shard = _ids_on(router, shard)
        assert on_shard == {i for i in ids if ShardMap.default(("1", "2")).shard_for(i) == shard}
    for client_id in ids:
        with router.session_for(client_id, write=False) as s:
            assert s.get(Client, client_id) is not None


def test_a_moved_bucket_is_served_from_its_new_shard(router: ShardRouter) -> None:
    client_id = next(i for i in range(1, 1000) if bucket_of(i) % 2 == 0)  # shard 1 by default
    with router.directory() as s:
        place_bucket(s, bucket_of(client_id), "2")
        s.commit()
    _add_client(router, client_id)
    assert client_id in _ids_on(router, "2") and client_id not in _ids_on(router, "1")


def test_writes_to_a_moving_bucket_are_refused_and_reads_go_on(router: ShardRouter) -> None:
    client_id = 1234
    _add_client(router, client_id)
    with router.directory() as s:
        place_bucket(s, bucket_of(client_id), router.shard_of(client_id), MOVING)
        s.commit()
    with pytest.raises(BucketMoving) as refused, router.session_for(client_id):
        pytest.fail("a session was opened on a moving bucket")
    assert refused.value.retryable and refused.value.bucket == bucket_of(client_id)
    assert "retry" in str(refused.value)
    with router.session_for(client_id, write=False) as s:
        assert s.get(Client, client_id) is not None
    other = next(i for i in range(1, 1000) if bucket_of(i) != bucket_of(client_id))
    _add_client(router, other)  # other buckets are untouched


def test_the_map_is_cached_for_its_ttl(cluster: Cluster) -> None:
    now = [0.0]
    router = ShardRouter.from_settings(cluster.settings(shard_map_ttl_s=5.0), lambda: now[0])
    try:
        client_id = 77
        home = router.shard_of(client_id)
        other = "2" if home == "1" else "1"
        with router.directory() as s:
            s.execute(delete(BucketMapRow))
            place_bucket(s, bucket_of(client_id), other)
            s.commit()
        now[0] = 4.9
        assert router.shard_of(client_id) == home
        now[0] = 5.0
        assert router.shard_of(client_id) == other
    finally:
        with router.directory() as s:
            s.execute(delete(BucketMapRow))
            s.commit()
        router.dispose()


def test_ids_are_unique_above_phase_two_and_below_two_to_the_53(router: ShardRouter) -> None:
    with router.directory() as s:
        nxt = IdAllocator.ensure_above(s.connection(), 5_000_000)
        assert IdAllocator.ensure_above(s.connection(), 10) == nxt  # never goes back
        s.commit()
    ids = router.allocate_ids(500) + router.allocate_ids(1)
    assert len(set(ids)) == 501
    assert min(ids) > 5_000_000 and max(ids) < MAX_GLOBAL_ID
    with router.directory() as s:
        maxvalue = (
            s.connection()
            .exec_driver_sql("SELECT max_value FROM pg_sequences WHERE sequencename = 'global_ids'")
            .scalar_one()
        )
    assert maxvalue == 2**53 - 1


def test_keyset_pages_over_two_shards_never_skip_or_repeat_while_rows_arrive(
    router: ShardRouter,
) -> None:
    for client_id in router.allocate_ids(60):
        _add_client(router, client_id)
    assert _ids_on(router, "1") and _ids_on(router, "2")

    def build(after: Key | None, limit: int) -> Select[Any]:
        stmt = select(Client).where(Client.workspace_id == 1)
        if after is not None:
            stmt = stmt.where(Client.id > after[0])
        return stmt.order_by(Client.id).limit(limit)

    fetchers = shard_fetchers(router, build)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        after = decode_cursor(cursor) if cursor else None
        page = merge_pages(fetchers, key=lambda c: (c.id,), limit=7, after=after)
        seen.extend(c.id for c in page.items)
        pages += 1
        if pages <= 8:  # rows arrive on both shards while the list is paged
            for client_id in router.allocate_ids(3):
                _add_client(router, client_id)
        cursor = page.cursor
        if cursor is None:
            break
    everything = _ids_on(router, "1") | _ids_on(router, "2")
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert seen == sorted(seen)
    assert set(seen) == everything, f"skipped: {sorted(everything - set(seen))}"
    assert len(everything) == 60 + 8 * 3


def test_workspaces_made_in_the_directory_reach_every_shard(router: ShardRouter) -> None:
    with router.directory() as d:
        d.merge(Workspace(id=1, name="acme"))
        d.add(Workspace(id=9, name="initech", daily_send_quota=5))
        d.commit()
    try:
        assert router.replicate_workspaces() == 2  # workspace 9 on shards 1 and 2
        assert router.replicate_workspaces() == 0
        for db in router.shards().values():
            with db.session() as s:
                copy = s.get(Workspace, 9)
                assert copy is not None and copy.name == "initech"
                assert copy.daily_send_quota == 5
        client_id = next(i for i in range(1, 100) if router.shard_of(i) == "2")
        with router.get_db_session(client_id) as s:  # the seed's name for session_for
            now = datetime.now(UTC)
            s.add(
                Client(
                    id=client_id,
                    workspace_id=9,
                    name="n",
                    email="n@example.com",
                    email_key="n@example.com",
                    created_at=now,
                    updated_at=now,
                )
            )
            s.commit()
    finally:
        for db in router.shards().values():
            with db.session() as s:
                s.execute(delete(Client).where(Client.workspace_id == 9))
                s.execute(delete(Workspace).where(Workspace.id == 9))
                s.commit()
        with router.directory() as d:
            d.execute(delete(Workspace).where(Workspace.id == 9))
            d.commit()


def test_sqlite_shards_and_directory_for_the_embedded_default(tmp_path: Path) -> None:
    """Phase 3 on one machine without PostgreSQL: SQLite files for the shards, and the
    directory beside shard 1 with its one-row id counter."""
    env = {
        "DB_SHARD_1": f"sqlite:///{tmp_path / 'shard1.db'}",
        "DB_SHARD_2": f"sqlite:///{tmp_path / 'shard2.db'}",
    }
    settings = Settings.from_env(env)
    for url in settings.db_shards:
        upgrade(settings.with_(database_url=url))
    router = ShardRouter.from_settings(settings)
    try:
        directory = default_directory_url(settings.db_shards[0])
        assert directory.database == str(tmp_path / "directory.db")
        upgrade_directory(directory)
        with router.directory() as d:
            assert IdAllocator.ensure_above(d.connection(), 41) == 42
            d.commit()
        ids = router.allocate_ids(20)
        assert ids == list(range(42, 62))
        with router.directory() as d:
            d.add(Workspace(id=1, name="acme"))
            d.commit()
        router.replicate_workspaces()
        for client_id in ids:
            _add_client(router, client_id)
        for shard in ("1", "2"):
            assert _ids_on(router, shard) == {i for i in ids if router.shard_of(i) == shard}
    finally:
        router.dispose()
