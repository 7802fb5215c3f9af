"""`coldreach-app migrate-shards --source URL --shard URL --shard URL [--directory URL]
[--dry-run] [--batch-buckets N] [--jobs N]`: move a phase-2 database onto shards (see
migration.py).

Exit status: 0 every bucket switched and verified; 1 a database failed or something does
not match (each difference named on stderr: table, bucket, shard); 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from ..config import ConfigError, default_directory_url, normalize_database_url
from .migration import BATCH_BUCKETS, JOBS, MigrationError, ShardMigration


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coldreach-app migrate-shards",
        description="Copy every row of a phase-2 database onto shards, bucket by bucket; "
        "resumable, verified per bucket and table before each bucket is switched.",
    )
    p.add_argument("--source", required=True, metavar="URL", help="the phase-2 database")
    p.add_argument(
        "--shard",
        action="append",
        required=True,
        metavar="URL",
        help="shard 1, shard 2, ... in order (repeat)",
    )
    p.add_argument(
        "--directory",
        metavar="URL",
        help="the directory database (default: <shard 1's database>_directory on shard 1's "
        "server, created when missing)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument(
        "--batch-buckets",
        type=int,
        default=BATCH_BUCKETS,
        metavar="N",
        help=f"buckets copied, verified and switched together (default {BATCH_BUCKETS}; "
        "fewer block fewer clients at a time, more copy faster)",
    )
    p.add_argument(
        "--jobs", type=int, default=JOBS, metavar="N", help=f"batches at once (default {JOBS})"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        source = normalize_database_url(args.source, "--source")
        shards = [normalize_database_url(u, "--shard") for u in args.shard]
        directory = (
            normalize_database_url(args.directory, "--directory")
            if args.directory
            else default_directory_url(shards[0])
        )
        migration = ShardMigration(
            source, shards, directory, batch=args.batch_buckets, jobs=args.jobs
        )
    except (ConfigError, MigrationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.dry_run:
            return migration.plan()
        report = migration.run()
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"error: database failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    rate = report.rows_copied / max(report.seconds, 1e-9)
    print(
        f"{report.buckets_moved} buckets moved ({report.rows_copied:,} rows, {rate:,.0f} rows/s), "
        f"{report.buckets_already_done} already switched, {len(report.mismatches)} mismatches, "
        f"{report.seconds:.1f} s"
    )
    if report.mismatches:
        for mismatch in report.mismatches:
            print(f"mismatch: {mismatch}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
