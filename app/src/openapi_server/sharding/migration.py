"""Copy a phase-2 database onto shards, bucket by bucket (`coldreach-app migrate-shards`).

Buckets not yet switched are taken in batches bound for one shard (BATCH_BUCKETS):
1. the directory's map rows of the batch are set `moving`: routers refuse writes to them;
2. in one transaction on the target shard, rows of the batch's buckets left there by an
   earlier, interrupted run are deleted (clients; their tasks and messages follow by
   cascade) and the buckets' clients, tasks and email messages are copied (binary COPY,
   source to target);
3. per bucket and table, the row count and a checksum of the rows are computed on both
   sides (the source in a fresh statement, so a write that reached the source during the
   copy shows as a difference and the bucket is copied again, up to COPY_ATTEMPTS times;
   a bucket that still differs is deleted from the shard again and stays `moving`);
4. the shard commits, then one directory transaction records the checks, the verified
   buckets' client email index and idempotency keys, and sets them `active` on the shard.

A kill at any point leaves either an uncommitted shard transaction (rolled back by the
server) or a bucket still `moving` whose copy is redone on the next run: nothing is lost
or duplicated, and a switched bucket is never copied again. Every run ends by verifying
the whole database: per bucket and table, rows and checksums on the bucket's shard
against the source, and no client row on any other shard. Differences are named (table,
bucket, shard) and the exit status is non-zero.

PostgreSQL only (phase 2 runs on PostgreSQL; COPY moves the rows).
"""

from __future__ import annotations

import hashlib
import queue
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, TextIO

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from ..config import Settings
from ..migrate import head_revision
from ..migrate import upgrade as upgrade_app_schema
from .buckets import ACTIVE, BUCKETS, MOVING, ShardMap, bucket_of, shard_name
from .directory import IdAllocator, upgrade_directory

# Sharded tables, parents first, with the column that names the row's client.
SHARDED = (("clients", "id"), ("tasks", "client_id"), ("email_messages", "client_id"))
# Copied whole to every shard (the sharded tables' workspace foreign keys) and the directory.
REFERENCE = ("workspaces",)
# Global data: the directory only.
GLOBAL = ("api_keys", "send_counts", "workspace_unsubscribes", "suppressions", "sns_notifications")
# Tables whose serial ids the directory keeps handing out after the move.
DIRECTORY_SERIALS = ("workspaces", "api_keys")

COPY_ATTEMPTS = 3
# Buckets per batch (three commits and a dozen statements per batch). On a busy machine each
# round trip waits for the CPU, so the statement count dominates: with 100,000 clients,
# 32 buckets a batch copied 13,500 rows/s and 128 buckets 22,000 rows/s (load average 12
# on 2 cores). 128 buckets are 1/8 of the clients, blocked for the few seconds their batch
# takes (about 5 s here, with 4 batches at once).
BATCH_BUCKETS = 128
# Batches copied at once, each worker with connections of its own.
JOBS = 4
# Every session renders rows identically on both sides (timestamps in UTC, ISO format).
# Per-bucket statements read ~100 clients' rows through the client_id indexes; freshly
# filled shards have no planner statistics yet and would be scanned whole for each bucket
# (measured: 230 ms a bucket instead of a few), so sequential scans stay off except for
# the final whole-table verification.
SESSION_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601"
    " -c enable_seqscan=off -c max_parallel_workers_per_gather=0 -c work_mem=64MB"
)


class MigrationError(RuntimeError):
    """A precondition failed (unreachable database, wrong revision, bad arguments)."""


@dataclass(frozen=True)
class Mismatch:
    table: str
    bucket: int | None
    shard: str
    detail: str

    def __str__(self) -> str:
        where = f"bucket {self.bucket}" if self.bucket is not None else "whole table"
        return f"table {self.table}, {where}, shard {self.shard}: {self.detail}"


@dataclass
class Report:
    buckets_total: int = BUCKETS
    buckets_moved: int = 0
    buckets_already_done: int = 0
    rows_copied: int = 0
    seconds: float = 0.0  # the whole run
    copy_seconds: float = 0.0  # copying, verifying and switching buckets
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


# One client's rows of one table: (client id, rows, md5 of the rows in id order).
ClientDigest = tuple[int, int, str]


# A bucket's rows of one table, summarised: row count and checksum.
@dataclass(frozen=True)
class Digest:
    rows: int
    checksum: str


def conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: URL, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            conninfo(url), autocommit=autocommit, options=SESSION_OPTIONS, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        name = url.render_as_string(hide_password=True)
        raise MigrationError(f"cannot connect to {name}: {' '.join(str(exc).split())}") from None


def ensure_database(url: URL) -> None:
    """Create the database `url` names when it does not exist (the directory's default)."""
    try:
        psycopg.connect(conninfo(url), connect_timeout=10).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise MigrationError(f"cannot connect to {url.database}: {exc}") from None
    with psycopg.connect(conninfo(url.set(database="postgres")), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database or "")))


def _same_database(a: URL, b: URL) -> bool:
    return (a.host or "", a.port or 5432, a.database) == (b.host or "", b.port or 5432, b.database)


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    # pg_attribute, not information_schema: its views plan badly with enable_seqscan off.
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        (f"public.{table}",),
    ).fetchall()
    return [r[0] for r in rows]


def _revision(conn: psycopg.Connection[Any]) -> str | None:
    exists = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
    if not exists or exists[0] is None:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def _digest_query(
    table: str, id_column: str, columns: Sequence[str], of_clients: bool
) -> sql.Composed:
    """Per client: row count and md5 of the rows in primary-key order."""
    row = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(
        "SELECT {idc}, count(*), md5(string_agg(ROW({row})::text, E'\\n' ORDER BY {pk}))"
        " FROM {t} {where} GROUP BY {idc}"
    ).format(
        idc=sql.Identifier(id_column),
        row=row,
        pk=sql.Identifier("id"),
        t=sql.Identifier(table),
        where=sql.SQL("WHERE {} = ANY(%s::bigint[])").format(sql.Identifier(id_column))
        if of_clients
        else sql.SQL(""),
    )


def _bucket_digest(per_client: Iterable[ClientDigest]) -> Digest:
    """The bucket's digest from per-client (id, rows, md5), independent of their order."""
    h = hashlib.sha256()
    rows = 0
    for client_id, count, md5 in sorted(per_client):
        rows += count
        h.update(f"{client_id}:{count}:{md5}\n".encode())
    return Digest(rows, h.hexdigest())


EMPTY: Digest = _bucket_digest([])


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise."""

    def __init__(self, total: int, done: int, out: TextIO | None = None) -> None:
        self.total, self.done, self.rows = total, done, 0
        self.out = out or sys.stderr
        self.started = time.monotonic()
        self.tty = self.out.isatty()
        self._last_decile = -1
        self._lock = threading.Lock()

    def advance(self, rows: int) -> None:
        with self._lock:
            self.done += 1
            self.rows += rows
            decile = self.done * 10 // max(self.total, 1)
            if self.tty or decile != self._last_decile or self.done == self.total:
                self._last_decile = decile
                self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width * self.done // max(self.total, 1)
        rate = self.rows / max(time.monotonic() - self.started, 1e-9)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} buckets, "
            f"{self.rows:,} rows, {rate:,.0f} rows/s"
        )
        self.out.write(f"\r{line}" if self.tty else f"{line}\n")
        if self.tty and self.done == self.total:
            self.out.write("\n")
        self.out.flush()


class ShardMigration:
    def __init__(
        self,
        source: URL,
        shards: Sequence[URL],
        directory: URL,
        out: TextIO | None = None,
        err: TextIO | None = None,
        batch: int = BATCH_BUCKETS,
        jobs: int = JOBS,
    ) -> None:
        if batch < 1 or jobs < 1:
            raise MigrationError("the batch size and the jobs are at least 1")
        if not shards:
            raise MigrationError("give at least one --shard")
        for url in (source, directory, *shards):
            if url.get_backend_name() != "postgresql":
                raise MigrationError(
                    f"{url.render_as_string(hide_password=True)}: migrate-shards needs PostgreSQL"
                )
        targets = [directory, *shards]
        for i, a in enumerate(targets):
            if _same_database(source, a):
                raise MigrationError(
                    "the source must be a database of its own, not a shard or the directory"
                )
            if any(_same_database(a, b) for b in targets[i + 1 :]):
                raise MigrationError(f"database {a.database} is given twice")
        self.source_url = source
        self.shard_urls = {shard_name(i): url for i, url in enumerate(shards, start=1)}
        self.directory_url = directory
        self.batch = batch
        self.jobs = jobs
        self.copy_format = sql.SQL("BINARY")
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    # -- entry points ---------------------------------------------------------------------

    def plan(self) -> int:
        """--dry-run: what would move where; writes nothing anywhere."""
        with connect(self.source_url, autocommit=True) as src:
            self._check_source(src)
            by_bucket = self._clients_by_bucket(src)
            per_client = {t: self._counts(src, t, c) for t, c in SHARDED}
        done = self._done_buckets_if_any()
        shard_map = ShardMap.default(self.shard_urls)
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for bucket in range(BUCKETS):
            shard = done.get(bucket) or shard_map.default_shard(bucket)
            totals[shard]["buckets"] += 1
            if bucket in done:
                totals[shard]["buckets already switched"] += 1
            for table, _ in SHARDED:
                totals[shard][table] += sum(per_client[table].get(c, 0) for c in by_bucket[bucket])
        out = self.out
        print(
            f"dry run: nothing written. {BUCKETS} buckets onto {len(self.shard_urls)} shards:",
            file=out,
        )
        for shard, url in self.shard_urls.items():
            counts = ", ".join(f"{k} {v:,}" for k, v in totals[shard].items())
            print(
                f"  shard {shard} ({url.render_as_string(hide_password=True)}): {counts}", file=out
            )
        print(
            f"  directory ({self.directory_url.render_as_string(hide_password=True)}): "
            f"{', '.join((*REFERENCE, *GLOBAL))}, client email index, idempotency keys",
            file=out,
        )
        return 0

    def run(self) -> Report:
        started = time.monotonic()
        report = Report()
        with connect(self.source_url, autocommit=True) as src:
            self._check_source(src)
            self._prepare_targets()
            with self._open_targets() as (directory, shards):
                self._choose_copy_format(src, [directory, *shards.values()])
                self._copy_global(src, directory, shards)
                self._analyze(shards)
                by_bucket = self._clients_by_bucket(src)
                columns = {t: _columns(src, t) for t, _ in SHARDED}
                placements = self._placements(directory)
                shard_map = ShardMap.default(self.shard_urls)
                pending = [b for b in range(BUCKETS) if placements.get(b, ("", ""))[1] != ACTIVE]
                report.buckets_already_done = BUCKETS - len(pending)
                progress = Progress(BUCKETS, report.buckets_already_done, self.err)
                copy_started = time.monotonic()
                targets: dict[str, list[int]] = defaultdict(list)
                for bucket in pending:
                    shard = placements.get(bucket, (shard_map.default_shard(bucket), ""))[0]
                    targets[shard].append(bucket)
                # Batches of the shards taken in turn, so that every shard is busy at once.
                batches = [
                    [
                        (shard, {b: by_bucket[b] for b in todo[i : i + self.batch]})
                        for i in range(0, len(todo), self.batch)
                    ]
                    for shard, todo in sorted(targets.items())
                ]
                work: queue.SimpleQueue[tuple[str, dict[int, list[int]]]] = queue.SimpleQueue()
                for turn in zip_longest(*batches):
                    for item in turn:
                        if item is not None:
                            work.put(item)
                # Workers with connections of their own: the databases work side by side
                # while a worker waits for a commit, a copy or a checksum.
                with ThreadPoolExecutor(self.jobs) as pool:
                    workers = [
                        pool.submit(self._worker, work, columns, progress) for _ in range(self.jobs)
                    ]
                    for worker in workers:
                        for bucket_result in worker.result().values():
                            if isinstance(bucket_result, list):
                                report.mismatches.extend(bucket_result)
                            else:
                                report.buckets_moved += 1
                                report.rows_copied += bucket_result
                report.copy_seconds = time.monotonic() - copy_started
                self._advance_allocator(src, directory)
                report.mismatches.extend(self._verify_all(src, directory, shards))
        report.seconds = time.monotonic() - started
        return report

    # -- preparation ------------------------------------------------------------------------

    def _check_source(self, src: psycopg.Connection[Any]) -> None:
        have = _revision(src)
        want = head_revision(Settings(database_url=self.source_url, auto_migrate=False))
        if have != want:
            raise MigrationError(
                f"the source database is at revision {have or 'none'}, this code expects {want}: "
                "run `coldreach-app migrate` against it first"
            )

    def _prepare_targets(self) -> None:
        ensure_database(self.directory_url)
        upgrade_directory(self.directory_url)
        for url in self.shard_urls.values():
            # Shard 1 is a new database on the phase-2 instance, beside the source.
            ensure_database(url)
            upgrade_app_schema(Settings(database_url=url, auto_migrate=False))

    @contextmanager
    def _open_targets(
        self,
    ) -> Iterator[tuple[psycopg.Connection[Any], dict[str, psycopg.Connection[Any]]]]:
        directory = connect(self.directory_url)
        shards: dict[str, psycopg.Connection[Any]] = {}
        try:
            for name, url in self.shard_urls.items():
                shards[name] = connect(url)
            yield directory, shards
        finally:
            for conn in (directory, *shards.values()):
                conn.close()

    def _choose_copy_format(
        self, src: psycopg.Connection[Any], targets: list[psycopg.Connection[Any]]
    ) -> None:
        """Binary COPY between servers of one major version; text otherwise (binary values
        are only meant to move between similar servers, text is portable)."""
        major = src.info.server_version // 10000
        if any(conn.info.server_version // 10000 != major for conn in targets):
            self.copy_format = sql.SQL("TEXT")
            print(
                "note: the servers' major versions differ; rows are copied as text (slower)",
                file=self.err,
            )

    @staticmethod
    def _analyze(shards: dict[str, psycopg.Connection[Any]]) -> None:
        """Fresh planner statistics on the shards. A resumed run deletes the rows an
        interrupted one left, and each deleted client runs the foreign-key cascade query on
        tasks and messages: planned on the statistics of an empty table, that query walks
        the workspace index instead of the client one (measured: 1.3 s per 2,000 clients
        at 15,000 rows, growing with the table)."""
        for conn in shards.values():
            conn.execute("ANALYZE clients, tasks, email_messages")
            conn.commit()

    def _done_buckets_if_any(self) -> dict[int, str]:
        """Switched buckets of an earlier run, when the directory exists (dry run)."""
        try:
            conn = psycopg.connect(
                conninfo(self.directory_url), autocommit=True, connect_timeout=10
            )
        except psycopg.OperationalError:
            return {}
        with conn:
            if conn.execute("SELECT to_regclass('public.bucket_map')").fetchone() == (None,):
                return {}
            rows = conn.execute("SELECT bucket, shard FROM bucket_map WHERE state = 'active'")
            return {b: s for b, s in rows}

    def _placements(self, directory: psycopg.Connection[Any]) -> dict[int, tuple[str, str]]:
        rows = directory.execute("SELECT bucket, shard, state FROM bucket_map").fetchall()
        directory.commit()
        unknown = {s for _, s, _ in rows} - set(self.shard_urls)
        if unknown:
            raise MigrationError(
                f"the directory maps buckets to shard(s) {', '.join(sorted(unknown))}, "
                f"but only {len(self.shard_urls)} --shard were given"
            )
        return {b: (s, st) for b, s, st in rows}

    @staticmethod
    def _clients_by_bucket(src: psycopg.Connection[Any]) -> dict[int, list[int]]:
        by_bucket: dict[int, list[int]] = {b: [] for b in range(BUCKETS)}
        for (client_id,) in src.execute("SELECT id FROM clients").fetchall():
            by_bucket[bucket_of(client_id)].append(client_id)
        return by_bucket

    @staticmethod
    def _counts(src: psycopg.Connection[Any], table: str, id_column: str) -> dict[int, int]:
        query = sql.SQL("SELECT {c}, count(*) FROM {t} GROUP BY {c}").format(
            c=sql.Identifier(id_column), t=sql.Identifier(table)
        )
        return {c: n for c, n in src.execute(query)}

    # -- global and reference tables ----------------------------------------------------------

    def _copy_global(
        self,
        src: psycopg.Connection[Any],
        directory: psycopg.Connection[Any],
        shards: dict[str, psycopg.Connection[Any]],
    ) -> None:
        """Upsert the small tables: workspaces everywhere, the global ones to the directory.
        Idempotent; repeated on every run so that a resumed run brings them up to date."""
        for table in REFERENCE:
            for conn in (directory, *shards.values()):
                self._upsert_table(src, conn, table)
        for table in GLOBAL:
            self._upsert_table(src, directory, table)
        for table in DIRECTORY_SERIALS:
            directory.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                    "GREATEST((SELECT max(id) FROM {ti}), 1))"
                ).format(t=sql.Literal(table), ti=sql.Identifier(table))
            )
        directory.commit()
        for conn in shards.values():
            conn.commit()

    def _upsert_table(
        self, src: psycopg.Connection[Any], dst: psycopg.Connection[Any], table: str
    ) -> None:
        columns = _columns(src, table)
        if _columns(dst, table) != columns:
            raise MigrationError(f"table {table} differs between the source and a target")
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        staging = sql.Identifier(f"staging_{table}")
        dst.execute(
            sql.SQL("CREATE TEMP TABLE {s} (LIKE {t}) ON COMMIT DROP").format(
                s=staging, t=sql.Identifier(table)
            )
        )
        with (
            src.cursor().copy(
                sql.SQL("COPY (SELECT {c} FROM {t}) TO STDOUT (FORMAT {f})").format(
                    c=cols, t=sql.Identifier(table), f=self.copy_format
                )
            ) as out,
            dst.cursor().copy(
                sql.SQL("COPY {s} ({c}) FROM STDIN (FORMAT {f})").format(
                    s=staging, c=cols, f=self.copy_format
                )
            ) as into,
        ):
            for block in out:
                into.write(block)
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns
        )
        dst.execute(
            sql.SQL(
                "INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT ON CONSTRAINT {pk} "
                "DO UPDATE SET {u}"
            ).format(
                t=sql.Identifier(table),
                c=cols,
                s=staging,
                pk=sql.Identifier(f"pk_{table}"),
                u=updates,
            )
        )

    # -- one bucket -------------------------------------------------------------------------

    def _worker(
        self,
        work: queue.SimpleQueue[tuple[str, dict[int, list[int]]]],
        columns: dict[str, list[str]],
        progress: Progress,
    ) -> dict[int, int | list[Mismatch]]:
        """Batches from the queue until it is empty."""
        results: dict[int, int | list[Mismatch]] = {}
        shards: dict[str, psycopg.Connection[Any]] = {}
        with (
            connect(self.source_url, autocommit=True) as src,
            connect(self.directory_url) as directory,
        ):
            try:
                while True:
                    try:
                        shard, batch = work.get_nowait()
                    except queue.Empty:
                        return results
                    if shard not in shards:
                        shards[shard] = connect(self.shard_urls[shard])
                    moved = self._move_batch(src, directory, shards[shard], shard, batch, columns)
                    for result in moved.values():
                        progress.advance(result if isinstance(result, int) else 0)
                    results.update(moved)
            finally:
                for conn in shards.values():
                    conn.close()

    def _move_batch(
        self,
        src: psycopg.Connection[Any],
        directory: psycopg.Connection[Any],
        dst: psycopg.Connection[Any],
        shard: str,
        batch: dict[int, list[int]],
        columns: dict[str, list[str]],
    ) -> dict[int, int | list[Mismatch]]:
        """Copy, verify and switch buckets bound for one shard: per bucket, the rows copied
        or what did not match. Three commits for the whole batch (map rows `moving`, the
        shard, the switch); each bucket is verified on its own under a savepoint."""
        with directory.cursor() as cur:
            cur.executemany(
                "INSERT INTO bucket_map (bucket, shard, state, updated_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (bucket) DO UPDATE SET"
                " shard = EXCLUDED.shard, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
                [(bucket, shard, MOVING) for bucket in batch],
            )
        directory.commit()
        results: dict[int, int | list[Mismatch]] = {}
        verified: dict[int, dict[str, Digest]] = {}
        # The whole batch in one pass; a bucket that differs is copied again on its own.
        todo = dict(batch)
        for _ in range(COPY_ATTEMPTS):
            ids = _id_array(todo.values())
            dst.execute("DELETE FROM clients WHERE id = ANY(%s::bigint[])", (ids,))
            for table, id_column in SHARDED:
                self._copy_rows(src, dst, table, id_column, columns[table], ids)
            target = self._digests(dst, columns, ids, todo)
            source = self._digests(src, columns, ids, todo)
            for bucket in list(todo):
                mismatches = [
                    Mismatch(t, bucket, shard, _difference(source[bucket][t], target[bucket][t]))
                    for t, _ in SHARDED
                    if source[bucket][t] != target[bucket][t]
                ]
                if mismatches:
                    results[bucket] = mismatches
                else:
                    verified[bucket] = target[bucket]
                    results[bucket] = sum(d.rows for d in target[bucket].values())
                    del todo[bucket]
            if not todo:
                break
        if todo:  # still different: none of it is committed, the bucket stays `moving`
            ids = _id_array(todo.values())
            dst.execute("DELETE FROM clients WHERE id = ANY(%s::bigint[])", (ids,))
        dst.commit()
        if verified:
            self._switch(src, directory, shard, verified, batch)
        return results

    def _copy_rows(
        self,
        src: psycopg.Connection[Any],
        dst: psycopg.Connection[Any],
        table: str,
        id_column: str,
        columns: list[str],
        ids: str,
    ) -> None:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        # COPY takes no parameters; `ids` is an array literal of integers built above.
        select = sql.SQL(
            "COPY (SELECT {c} FROM {t} WHERE {i} = ANY({ids}::bigint[]) ORDER BY id) "
            "TO STDOUT (FORMAT {f})"
        ).format(
            c=cols,
            t=sql.Identifier(table),
            i=sql.Identifier(id_column),
            ids=sql.Literal(ids),
            f=self.copy_format,
        )
        insert = sql.SQL("COPY {t} ({c}) FROM STDIN (FORMAT {f})").format(
            t=sql.Identifier(table), c=cols, f=self.copy_format
        )
        with src.cursor().copy(select) as out, dst.cursor().copy(insert) as into:
            for block in out:
                into.write(block)

    @staticmethod
    def _digests(
        conn: psycopg.Connection[Any],
        columns: dict[str, list[str]],
        ids: str,
        buckets: dict[int, list[int]],
    ) -> dict[int, dict[str, Digest]]:
        """Per bucket and table: rows and checksum of the given clients' rows."""
        per_bucket: dict[int, dict[str, list[ClientDigest]]] = {
            b: {t: [] for t, _ in SHARDED} for b in buckets
        }
        for table, id_column in SHARDED:
            query = _digest_query(table, id_column, columns[table], of_clients=True)
            for client_id, count, md5 in conn.execute(query, (ids,)):
                per_bucket[bucket_of(client_id)][table].append((client_id, count, md5))
        return {
            b: {t: _bucket_digest(rows) for t, rows in tables.items()}
            for b, tables in per_bucket.items()
        }

    @staticmethod
    def _switch(
        src: psycopg.Connection[Any],
        directory: psycopg.Connection[Any],
        shard: str,
        verified: dict[int, dict[str, Digest]],
        batch: dict[int, list[int]],
    ) -> None:
        """One directory transaction: checks, the buckets' global rows, the map flip."""
        ids = _id_array(batch[b] for b in verified)
        emails = src.execute(
            "SELECT workspace_id, email_key, id FROM clients WHERE id = ANY(%s::bigint[])", (ids,)
        ).fetchall()
        keys = src.execute(
            "SELECT workspace_id, idempotency_key, client_id, id, request_hash FROM email_messages"
            " WHERE client_id = ANY(%s::bigint[]) AND idempotency_key IS NOT NULL",
            (ids,),
        ).fetchall()
        with directory.cursor() as cur:
            cur.executemany(
                "INSERT INTO shard_bucket_checks (bucket, table_name, shard, rows, checksum,"
                " verified_at) VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (bucket, table_name)"
                " DO UPDATE SET shard = EXCLUDED.shard, rows = EXCLUDED.rows,"
                " checksum = EXCLUDED.checksum, verified_at = EXCLUDED.verified_at",
                [
                    (bucket, t, shard, d.rows, d.checksum)
                    for bucket, digests in verified.items()
                    for t, d in digests.items()
                ],
            )
            # One statement per table with the rows as arrays: far fewer round trips than
            # a row at a time (about 100 clients a bucket).
            if emails:
                cur.execute(
                    "INSERT INTO client_email_index (workspace_id, email_key, client_id)"
                    " SELECT * FROM unnest(%s::int[], %s::text[], %s::bigint[])"
                    " ON CONFLICT (workspace_id, email_key)"
                    " DO UPDATE SET client_id = EXCLUDED.client_id",
                    [list(column) for column in zip(*emails, strict=True)],
                )
            if keys:
                cur.execute(
                    "INSERT INTO idempotency_keys (workspace_id, idempotency_key, client_id,"
                    " message_id, request_hash)"
                    " SELECT * FROM unnest(%s::int[], %s::text[], %s::bigint[], %s::bigint[],"
                    " %s::text[]) ON CONFLICT (workspace_id, idempotency_key) DO UPDATE SET"
                    " client_id = EXCLUDED.client_id, message_id = EXCLUDED.message_id,"
                    " request_hash = EXCLUDED.request_hash",
                    [list(column) for column in zip(*keys, strict=True)],
                )
            cur.execute(
                "UPDATE bucket_map SET state = %s, updated_at = now() WHERE bucket = ANY(%s)",
                (ACTIVE, list(verified)),
            )
        directory.commit()

    def _advance_allocator(
        self, src: psycopg.Connection[Any], directory: psycopg.Connection[Any]
    ) -> None:
        """New ids start above every id the phase-2 database handed out."""
        used = 0
        for table, _ in SHARDED:
            row = src.execute(
                sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            used = max(used, int(row[0]) if row else 0)
        directory.execute(IdAllocator.ENSURE_ABOVE_PG, {"used": used})
        directory.commit()

    # -- verification -------------------------------------------------------------------------

    def _verify_all(
        self,
        src: psycopg.Connection[Any],
        directory: psycopg.Connection[Any],
        shards: dict[str, psycopg.Connection[Any]],
    ) -> list[Mismatch]:
        """Every bucket and table against the source, rows outside their shard, small tables."""
        placements = self._placements(directory)
        mismatches: list[Mismatch] = []
        urls = {"source": self.source_url, **self.shard_urls}
        queries = {
            table: _digest_query(table, id_column, _columns(src, table), of_clients=False)
            for table, id_column in SHARDED
        }
        # Every table of every database scanned at once, each scan on a connection of its own.
        with ThreadPoolExecutor(len(urls) * len(queries)) as pool:
            pending = {
                (table, name): pool.submit(_scan, url, query)
                for table, query in queries.items()
                for name, url in urls.items()
            }
            scans = {key: future.result() for key, future in pending.items()}
        for table, _ in SHARDED:
            expected = _per_bucket(scans[table, "source"])
            for name in shards:
                found = _per_bucket(scans[table, name])
                for bucket in range(BUCKETS):
                    shard, state = placements.get(bucket, ("", ""))
                    got = found.get(bucket, EMPTY)
                    if shard == name and state == ACTIVE:
                        want = expected.get(bucket, EMPTY)
                        if want != got:
                            mismatches.append(Mismatch(table, bucket, name, _difference(want, got)))
                    elif got.rows:
                        mismatches.append(
                            Mismatch(
                                table,
                                bucket,
                                name,
                                f"{got.rows} rows of a bucket this shard does not hold",
                            )
                        )
        for table in (*REFERENCE, *GLOBAL):
            want = self._table_digest(src, table)
            targets = {"directory": directory}
            if table in REFERENCE:
                targets.update(shards)
            for name, conn in targets.items():
                got = self._table_digest(conn, table)
                conn.commit()
                if got != want:
                    mismatches.append(Mismatch(table, None, name, _difference(want, got)))
        return mismatches

    @staticmethod
    def _table_digest(conn: psycopg.Connection[Any], table: str) -> Digest:
        columns = _columns(conn, table)
        row = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        pk = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        result = conn.execute(
            sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(ROW({r})::text, E'\\n' ORDER BY {pk})),"
                " '') FROM {t}"
            ).format(r=row, pk=pk, t=sql.Identifier(table))
        ).fetchone()
        assert result is not None
        return Digest(int(result[0]), str(result[1]))


def _scan(url: URL, query: sql.Composed) -> list[ClientDigest]:
    """A whole-table digest query (sequential scans allowed: it reads every row)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = on")
        return conn.execute(query).fetchall()


def _id_array(groups: Iterable[list[int]]) -> str:
    """A PostgreSQL array literal of client ids (integers only: safe inside COPY's query)."""
    return "{" + ",".join(str(int(i)) for group in groups for i in group) + "}"


def _per_bucket(per_client: Iterable[ClientDigest]) -> dict[int, Digest]:
    grouped: dict[int, list[ClientDigest]] = defaultdict(list)
    for row in per_client:
        grouped[bucket_of(row[0])].append(row)
    return {bucket: _bucket_digest(rows) for bucket, rows in grouped.items()}


def _difference(source: Digest, target: Digest) -> str:
    if source.rows != target.rows:
        return f"{target.rows} rows, the source has {source.rows}"
    return f"checksum {target.checksum[:12]} differs from the source's {source.checksum[:12]}"
