"""Shard migration throughput: rows/s of `migrate-shards` from a seeded phase-2 database
onto two shards (target: >= 20,000 rows/s on the 2-core machine).

    uv run --frozen python benchmarks/app_migrate_shards.py [--clients 100000] [--runs 3]

Each run seeds a fresh source (N clients with one task and one message each: 3N rows, the
fixture of tests/app/test_app_migrate_shards.py), migrates it in-process and reports the
bucket phase (copy, per-bucket verification, switch) and the whole run (schemas, global
tables, allocator and the final whole-database verification included). Databases are
created on the local PostgreSQL and dropped after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "app"))

import psycopg
from app_common import throwaway_database
from app_shard_seed import seed_phase2
from openapi_server.sharding.directory import default_directory_url
from openapi_server.sharding.migration import BATCH_BUCKETS, ShardMigration, conninfo


def one_run(clients: int, batch: int) -> dict[str, float]:
    with (
        throwaway_database() as source,
        throwaway_database(migrated=False) as s1,
        throwaway_database(migrated=False) as s2,
    ):
        rows = sum(seed_phase2(source, clients).values())
        directory = default_directory_url(s1)
        try:
            report = ShardMigration(source, [s1, s2], directory, batch=batch).run()
        finally:
            with psycopg.connect(conninfo(s1.set(database="postgres")), autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{directory.database}" WITH (FORCE)')
        if not report.ok or report.rows_copied != rows:
            raise SystemExit(f"migration failed: {report.mismatches[:5]}")
        return {
            "rows": rows,
            "copy_rows_per_s": rows / report.copy_seconds,
            "total_rows_per_s": rows / report.seconds,
            "copy_s": report.copy_seconds,
            "total_s": report.seconds,
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=BATCH_BUCKETS, help="buckets per commit")
    args = p.parse_args()
    runs = [one_run(args.clients, args.batch) for _ in range(args.runs)]
    for r in runs:
        print(json.dumps({k: round(v, 1) for k, v in r.items()}), file=sys.stderr)
    summary = {
        "clients": args.clients,
        "rows": runs[0]["rows"],
        "batch": args.batch,
        "runs": args.runs,
        "median_copy_rows_per_s": round(statistics.median(r["copy_rows_per_s"] for r in runs)),
        "median_total_rows_per_s": round(statistics.median(r["total_rows_per_s"] for r in runs)),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
