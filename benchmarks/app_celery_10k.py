"""10,000 messages through Celery with 4 worker processes: 0 duplicates, 0 lost.

Every message is enqueued once, and a fifth of them a second time (a redelivery
after a lost ack, or the sweeper re-enqueueing); the claim must absorb it. Each
mailer call is appended to an outbox file, and the outbox is the ground truth.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import redis
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

MESSAGES = 10_000
WORKERS = 4
CONCURRENCY = 8


def main() -> None:
    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        outbox = Path(tmp) / "outbox.jsonl"
        engine = create_engine(url)
        ids = seed(engine, MESSAGES)
        flush_redis()
        env = app_env(
            url,
            SEND_LATENCY_MS="0",
            WORKER_CONCURRENCY=str(CONCURRENCY),
            MAIL_OUTBOX=str(outbox),
            DB_POOL_SIZE="4",
            DB_MAX_OVERFLOW="4",
        )
        # Enqueue everything first, then start the workers: the drain rate is then the
        # workers' own, not shared with the producer for the 2 cores.
        queue = CeleryQueue(Settings.from_env({"REDIS_URL": REDIS_URL}))
        deliveries = ids + random.Random(7).sample(ids, MESSAGES // 5)
        random.Random(8).shuffle(deliveries)
        t0 = time.perf_counter()
        queue.enqueue_many(deliveries)
        enqueued = time.perf_counter() - t0
        workers = start_workers(env, WORKERS, Path(tmp))
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    pending = conn.execute(
                        text("SELECT count(*) FROM email_messages WHERE status <> 'sent'")
                    ).scalar_one()
                if pending == 0:
                    break
                time.sleep(0.2)
            # Let the remaining duplicate deliveries run (as no-ops) before counting.
            broker = redis.Redis.from_url(REDIS_URL)
            while broker.llen(queue.settings.celery_queue) and time.monotonic() < deadline:
                time.sleep(0.2)
            broker.close()
            time.sleep(1)
            with engine.connect() as conn:
                statuses = dict(
                    conn.execute(
                        text("SELECT status, count(*) FROM email_messages GROUP BY status")
                    ).all()
                )
                first, last = conn.execute(
                    text("SELECT min(claimed_at), max(sent_at) FROM email_messages")
                ).one()
        finally:
            stop(workers)
            engine.dispose()
        calls = Counter(json.loads(line)["message_id"] for line in outbox.open())
        elapsed = (last - first).total_seconds()
        row = {
            "messages": MESSAGES,
            "deliveries": len(deliveries),
            "workers": WORKERS,
            "concurrency_per_worker": CONCURRENCY,
            "enqueue_seconds": round(enqueued, 1),
            "drain_seconds": round(elapsed, 1),
            "emails_per_s": round(MESSAGES / elapsed, 1),
            "mailer_calls": sum(calls.values()),
            "duplicates": sum(c - 1 for c in calls.values() if c > 1),
            "lost": sum(1 for i in ids if calls[i] == 0),
            "statuses": statuses,
        }
        print(json.dumps(row))
        if row["duplicates"] or row["lost"] or statuses != {"sent": MESSAGES}:
            raise SystemExit("FAILED: duplicates or lost messages")


if __name__ == "__main__":
    main()
