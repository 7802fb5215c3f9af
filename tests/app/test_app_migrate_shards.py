"""`coldreach-app migrate-shards` on real PostgreSQL databases: a phase-2 source seeded with
100,000 clients (one task and one message each) moved onto two shards, killed twice with
SIGKILL mid-run and resumed; a checksum mismatch named; a dry run that writes nothing.
The kill test runs at 5,000 clients in `make test` and at 100,000 in `make soak`.

Databases are created on the local server (prefix shards_) and dropped after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
import pytest
from app_helpers import create_database, drop_database
from app_shard_seed import seed_phase2
from openapi_server.config import Settings
from openapi_server.migrate import upgrade
from openapi_server.sharding import BucketMoving, ShardMap, ShardRouter, bucket_of
from openapi_server.sharding.directory import default_directory_url
from openapi_server.sharding.migration import SHARDED, ShardMigration
from psycopg import sql
from sqlalchemy.engine import URL

# Clients of the kill test: the same walk (1024 buckets in batches, two kills mid-batch)
# at a size `make test` affords, and at the scale the migration is sized for (soak).
KILL_SIZES = [5_000, pytest.param(100_000, marks=pytest.mark.soak)]


@dataclass
class Databases:
    source: URL
    shards: list[URL]

    @property
    def directory(self) -> URL:
        return default_directory_url(self.shards[0])

    def argv(self, *extra: str) -> list[str]:
        args = [sys.executable, "-m", "openapi_server.cli", "migrate-shards"]
        args += ["--source", _plain(self.source)]
        for url in self.shards:
            args += ["--shard", _plain(url)]
        return [*args, *extra]


def _plain(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(url: URL) -> psycopg.Connection[Any]:
    return psycopg.connect(_plain(url), autocommit=True)


def _databases(prefix: str, clients: int) -> Databases:
    source = create_database(f"shards_{prefix}_src")
    upgrade(Settings(database_url=source, auto_migrate=False))
    seed_phase2(source, clients)
    shards = [create_database(f"shards_{prefix}_s1"), create_database(f"shards_{prefix}_s2")]
    return Databases(source, shards)


def _drop(dbs: Databases) -> None:
    for url in (dbs.source, *dbs.shards, dbs.directory):
        drop_database(url)


@pytest.fixture(scope="module")
def big(request: pytest.FixtureRequest) -> Iterator[Databases]:
    dbs = _databases("big", request.param)
    yield dbs
    _drop(dbs)


@pytest.fixture
def small() -> Iterator[Databases]:
    dbs = _databases("small", 3000)
    yield dbs
    _drop(dbs)


def _bucket_map(dbs: Databases, query: LiteralString) -> list[tuple[Any, ...]]:
    """`query` on the directory's bucket map; no rows before the migration has made it."""
    try:
        with _connect(dbs.directory) as conn:
            if conn.execute("SELECT to_regclass('bucket_map')").fetchone() == (None,):
                return []
            return conn.execute(query).fetchall()
    except psycopg.OperationalError:
        return []  # the directory database does not exist yet


def _bucket_states(dbs: Databases) -> Counter[str]:
    rows = _bucket_map(dbs, "SELECT state, count(*) FROM bucket_map GROUP BY state")
    return Counter({state: int(n) for state, n in rows})


def _moving(dbs: Databases) -> set[int]:
    """The buckets in state `moving`: marked by a batch, not yet switched."""
    rows = _bucket_map(dbs, "SELECT bucket FROM bucket_map WHERE state = 'moving'")
    return {int(bucket) for (bucket,) in rows}


# The kill test's batches: 32 buckets on 4 workers, so that one step of the gate below
# (each worker switching one batch) moves at most 128 buckets and both kills land mid-run.
KILL_BATCHES = ("--batch-buckets", "32", "--jobs", "4")


class SwitchGate:
    """Holds every batch of a running migration just before its switch: an EXCLUSIVE lock on
    shard_bucket_checks, the first table a batch's switch writes, taken after its buckets are
    `moving` and its rows copied. While the gate is held no bucket becomes `active`, so a
    kill then is always mid-batch, however fast the machine; `release` lets the waiting
    batches switch (PostgreSQL grants the queued locks before a new request of ours)."""

    def __init__(self, directory: URL) -> None:
        self.directory = directory
        self.conn: psycopg.Connection[Any] | None = None

    def hold(self) -> bool:
        """Take the lock; False while the migration has not made the directory yet."""
        if self.conn is None:
            try:
                conn = psycopg.connect(_plain(self.directory))
            except psycopg.OperationalError:
                return False  # the directory database does not exist yet
            if conn.execute("SELECT to_regclass('shard_bucket_checks')").fetchone() == (None,):
                conn.close()
                return False
            # A switch that never ends would hold the lock forever: fail, do not hang.
            conn.execute("SET lock_timeout = '60s'")
            conn.commit()
            self.conn = conn
        self.conn.execute("LOCK TABLE shard_bucket_checks IN EXCLUSIVE MODE")
        return True

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _kill_after(dbs: Databases, active: int, timeout: float = 300.0) -> int:
    """Start the migration and SIGKILL it in the middle of a batch (buckets `moving`) once
    `active` buckets are switched. Returns the buckets switched by then."""
    left_moving = _moving(dbs)  # by a run killed before: not this run's batches
    proc = subprocess.Popen(
        dbs.argv(*KILL_BATCHES), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    gate = SwitchGate(dbs.directory)
    deadline = time.monotonic() + timeout
    try:
        while True:
            held = gate.hold()
            time.sleep(0.05)  # the workers reach the gate
            states = _bucket_states(dbs)
            if held and states["active"] >= active and _moving(dbs) - left_moving:
                os.kill(proc.pid, signal.SIGKILL)
                break
            assert proc.poll() is None, "the migration ended before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            gate.release()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        gate.close()
    assert _moving(dbs) - left_moving, "killed between batches, not in one"
    return _bucket_states(dbs)["active"]


def _rows(url: URL, table: str) -> list[tuple[Any, ...]]:
    with _connect(url) as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
        ).fetchall()


def _position(url: URL, table: str, column: str) -> int:
    with _connect(url) as conn:
        cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(sql.Identifier(table)))
        return [c.name for c in cur.description or ()].index(column)


@pytest.mark.parametrize("big", KILL_SIZES, indirect=True, ids=lambda n: f"{n}-clients")
def test_killed_twice_and_resumed_every_row_lands_on_exactly_its_shard(
    big: Databases, request: pytest.FixtureRequest
) -> None:
    clients = request.node.callspec.params["big"]
    first = _kill_after(big, 150)
    assert 150 <= first < 1024
    second = _kill_after(big, first + 250)
    assert first + 250 <= second < 1024

    done = subprocess.run(big.argv(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{second} already switched" in done.stdout, done.stdout
    assert "1024/1024 buckets" in done.stderr  # the progress bar, on stderr

    shard_map = ShardMap.default(("1", "2"))
    for table, id_column in SHARDED:
        source = _rows(big.source, table)
        position = _position(big.source, table, id_column)  # the row's client
        on = {name: _rows(url, table) for name, url in zip(("1", "2"), big.shards, strict=True)}
        placed = Counter(row for rows in on.values() for row in rows)
        assert set(placed) == set(source), f"{table}: rows lost or changed"
        assert max(placed.values()) == 1, f"{table}: a row is on more than one shard"
        assert sum(placed.values()) == len(source) >= clients
        for name, rows in on.items():
            wrong = [r for r in rows if shard_map.shard_for(r[position]) != name]
            assert not wrong, f"{table}: {len(wrong)} rows on shard {name} belong elsewhere"
    _assert_directory(big)

    again = subprocess.run(big.argv(), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.startswith("0 buckets moved") and "1024 already switched" in again.stdout


def _assert_directory(dbs: Databases) -> None:
    with _connect(dbs.source) as src:
        clients = src.execute("SELECT count(*) FROM clients").fetchone()
        keys = src.execute(
            "SELECT count(*) FROM email_messages WHERE idempotency_key IS NOT NULL"
        ).fetchone()
        max_id = src.execute("SELECT max(id) FROM email_messages").fetchone()
        api_keys = src.execute("SELECT public_id FROM api_keys ORDER BY 1").fetchall()
    with _connect(dbs.directory) as d:
        assert d.execute("SELECT count(*) FROM client_email_index").fetchone() == clients
        assert d.execute("SELECT count(*) FROM idempotency_keys").fetchone() == keys
        assert d.execute("SELECT public_id FROM api_keys ORDER BY 1").fetchall() == api_keys
        states = d.execute("SELECT state, count(*) FROM bucket_map GROUP BY state").fetchall()
        assert states == [("active", 1024)]
        next_id = d.execute("SELECT nextval('global_ids')").fetchone()
        assert next_id and max_id and next_id[0] > max_id[0]
    for url in dbs.shards:  # workspaces: a reference table on every shard
        with _connect(url) as shard:
            assert shard.execute("SELECT count(*) FROM workspaces").fetchone() == (2,)


def test_a_row_that_differs_is_named_and_its_bucket_is_not_switched(small: Databases) -> None:
    with _connect(small.source) as src:
        task_id, client_id = src.execute(
            "SELECT t.id, t.client_id FROM tasks t ORDER BY id OFFSET 17 LIMIT 1"
        ).fetchone() or (0, 0)
    bucket = bucket_of(client_id)
    shard_url = small.shards[bucket % 2]
    shard = str(bucket % 2 + 1)
    upgrade(Settings(database_url=shard_url, auto_migrate=False))
    with _connect(shard_url) as conn:  # the shard alters one copied row as it arrives
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.id = {} THEN NEW.title := 'tampered'; END IF; RETURN NEW; END $$"
            ).format(sql.Literal(task_id))
        )
        conn.execute(
            "CREATE TRIGGER tamper BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tamper()"
        )

    run = subprocess.run(small.argv(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert f"mismatch: table tasks, bucket {bucket}, shard {shard}: checksum" in run.stderr
    assert run.stderr.count("mismatch:") == 1, run.stderr
    with _connect(small.directory) as d:
        assert d.execute(
            "SELECT state FROM bucket_map WHERE bucket = %s", (bucket,)
        ).fetchone() == ("moving",)
        assert d.execute("SELECT count(*) FROM bucket_map WHERE state = 'active'").fetchone() == (
            1023,
        )
    with _connect(shard_url) as conn:  # nothing of the bucket was committed
        assert conn.execute(
            "SELECT count(*) FROM clients WHERE id = %s", (client_id,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM tasks WHERE client_id = %s", (client_id,)
        ).fetchone() == (0,)
        conn.execute("DROP TRIGGER tamper ON tasks")

    resumed = subprocess.run(small.argv(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("1 buckets moved")

    # A row changed on a shard after the switch is caught by the whole-database check.
    with _connect(shard_url) as conn:
        conn.execute("UPDATE email_messages SET subject = 'x' WHERE client_id = %s", (client_id,))
    rerun = subprocess.run(small.argv(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 1
    assert f"mismatch: table email_messages, bucket {bucket}, shard {shard}" in rerun.stderr


def test_dry_run_prints_the_plan_and_writes_nothing(small: Databases) -> None:
    run = subprocess.run(small.argv("--dry-run"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "dry run: nothing written" in run.stdout
    assert "shard 1" in run.stdout and "buckets 512" in run.stdout
    for url in small.shards:
        with _connect(url) as conn:
            assert conn.execute("SELECT to_regclass('clients')").fetchone() == (None,)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        _connect(small.directory).close()


def test_bad_arguments_exit_2_and_an_old_source_exits_1(small: Databases) -> None:
    same = subprocess.run(
        [*small.argv()[:4], "--source", _plain(small.source), "--shard", _plain(small.source)],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 2 and "a database of its own" in same.stderr
    with _connect(small.source) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    old = subprocess.run(small.argv(), capture_output=True, text=True)
    assert old.returncode == 1 and "revision 0001" in old.stderr


def test_text_copy_between_different_server_versions_moves_the_same_rows(
    small: Databases,
) -> None:
    """Binary COPY is only for servers of one major version; the text path gives the same
    rows (forced here: the local servers are all one version)."""
    migration = ShardMigration(small.source, small.shards, small.directory, batch=100, jobs=2)
    migration.copy_format = sql.SQL("TEXT")
    report = migration.run()
    assert report.ok, report.mismatches
    assert report.buckets_moved == 1024 and report.rows_copied == 3 * 3000
    for table, _ in SHARDED:
        copied = sorted(row for url in small.shards for row in _rows(url, table))
        assert copied == _rows(small.source, table)


def test_a_source_write_during_the_copy_is_caught_up_and_routers_wait(
    small: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row changed on the source while its bucket is copied makes the checks differ: the
    bucket is copied again and switched with the change. Meanwhile the bucket is `moving`
    and a router refuses to write to it."""
    settings = Settings(
        database_url=small.shards[0],
        auto_migrate=False,
        db_shards=tuple(small.shards),
        db_directory_url=small.directory,
        shard_map_ttl_s=0.0,
    )
    with _connect(small.source) as src:
        client_id = src.execute("SELECT min(id) FROM clients").fetchone()[0]  # type: ignore[index]
    seen: list[str] = []
    copy_rows = ShardMigration._copy_rows

    def copy_then_write(self: ShardMigration, src: Any, dst: Any, table: str, *rest: Any) -> None:
        copy_rows(self, src, dst, table, *rest)
        if table == "email_messages" and not seen and str(client_id) in rest[-1][1:-1].split(","):
            seen.append("copied")
            with _connect(small.source) as conn:  # the phase-2 app, still writing
                conn.execute(
                    "UPDATE tasks SET title = 'changed during the copy' WHERE client_id = %s",
                    (client_id,),
                )
            router = ShardRouter.from_settings(settings)
            try:
                with pytest.raises(BucketMoving), router.session_for(client_id):
                    pass
                with router.session_for(client_id, write=False):
                    seen.append("read served")
            finally:
                router.dispose()

    monkeypatch.setattr(ShardMigration, "_copy_rows", copy_then_write)
    report = ShardMigration(small.source, small.shards, small.directory, jobs=1).run()
    assert seen == ["copied", "read served"]
    assert report.ok, report.mismatches
    shard = small.shards[0 if ShardMap.default(("1", "2")).shard_for(client_id) == "1" else 1]
    with _connect(shard) as conn:
        title = conn.execute("SELECT title FROM tasks WHERE client_id = %s", (client_id,))
        assert title.fetchone() == ("changed during the copy",)


def test_a_missing_shard_database_is_created_beside_the_source(small: Databases) -> None:
    """Phase 3's shard 1 is a new database on the phase-2 instance: the first run creates
    it, as it creates the directory."""
    drop_database(small.shards[0])
    run = subprocess.run(small.argv(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with _connect(small.shards[0]) as conn:
        (count,) = conn.execute("SELECT count(*) FROM clients").fetchone() or (0,)
    with _connect(small.shards[1]) as conn:
        (other,) = conn.execute("SELECT count(*) FROM clients").fetchone() or (0,)
    assert count > 0 and count + other == 3000
