"""Sending throughput with SEND_LATENCY_MS=1000 at concurrency 1, 8 and 32.

One Celery worker process (`python -m openapi_server.worker`, threads pool) per
run with WORKER_CONCURRENCY=c. Each run sends 10*c messages, so the ideal is
c emails/s for 10 s; the figure is messages / (last sent_at - first enqueue).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from app_common import (
    REDIS_URL,
    app_env,
    flush_redis,
    seed,
    start_workers,
    stop,
    throwaway_database,
)
from openapi_server.config import Settings
from openapi_server.queues import CeleryQueue
from sqlalchemy import create_engine, text

LATENCY_MS = 1000
ROUNDS = 10


def run(url, concurrency: int, log_dir: Path) -> dict:
    engine = create_engine(url)
    n = ROUNDS * concurrency
    ids = seed(engine, n)
    flush_redis()
    env = app_env(
        url,
        SEND_LATENCY_MS=str(LATENCY_MS),
        WORKER_CONCURRENCY=str(concurrency),
        WORKER_POOL="threads",
        MAIL_OUTBOX="",
        DB_POOL_SIZE="5",
        DB_MAX_OVERFLOW="5",
    )
    workers = start_workers(env, 1, log_dir)
    try:
        queue = CeleryQueue(Settings.from_env({"REDIS_URL": REDIS_URL}))
        start = datetime.now(UTC)
        for mid in ids:
            queue.enqueue(mid)
        while True:
            with engine.connect() as conn:
                sent, last = conn.execute(
                    text("SELECT count(*), max(sent_at) FROM email_messages WHERE status='sent'")
                ).one()
            if sent == n:
                break
            time.sleep(0.05)
    finally:
        stop(workers)
        engine.dispose()
    elapsed = (last - start).total_seconds()
    rate = n / elapsed
    row = {
        "concurrency": concurrency,
        "messages": n,
        "seconds": round(elapsed, 2),
        "emails_per_s": round(rate, 2),
        "ideal_per_s": concurrency * 1000 / LATENCY_MS,
        "pct_of_ideal": round(100 * rate / (concurrency * 1000 / LATENCY_MS), 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        for concurrency in (1, 8, 32):
            run(url, concurrency, Path(tmp))


if __name__ == "__main__":
    main()
