"""The Celery worker: `python -m openapi_server.worker`.

Pool and concurrency come from WORKER_POOL (default `threads`) and
WORKER_CONCURRENCY (default 32): sending is waiting on the network, so threads
give concurrency without a process per slot. Besides the Celery consumer, the
process runs a housekeeping thread: it flags messages stuck in `sending`,
re-enqueues `queued` messages whose queue entry was lost, and touches
`$DATA_DIR/worker-heartbeat` for `python -m openapi_server.healthcheck --worker`,
and, when BACKLOG_METRIC_NAMESPACE is set, publishes the queued and stuck-in-sending
counts to CloudWatch (metrics.py).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from celery import Task
from celery.signals import worker_ready
from sqlalchemy.exc import OperationalError

from .config import settings_or_exit
from .db import Database
from .healthcheck import heartbeat_path
from .mailer import make_mailer
from .metrics import BacklogPublisher
from .pipeline import Pipeline
from .queues import TASK_NAME, CeleryQueue, make_celery

log = logging.getLogger("openapi_server.worker")

settings = settings_or_exit()

celery_app = make_celery(settings)
_lock = threading.Lock()
_pipeline: Pipeline | None = None


def get_pipeline() -> Pipeline:
    """One pipeline (engine, pool, mailer) per process, created on first use (after any fork)."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            _pipeline = Pipeline(Database(settings), make_mailer(settings), settings)
        return _pipeline


@celery_app.task(name=TASK_NAME, ignore_result=True, bind=True, max_retries=5)
def send_email_task(self: Task, message_id: int) -> str:
    try:
        result = get_pipeline().process(int(message_id))
    except OperationalError as exc:
        # The database was unreachable for the claim: try again shortly. A claim that did
        # commit is not repeated (the row is no longer queued; the sweeper flags it).
        raise self.retry(exc=exc, countdown=5) from exc
    if result.requeue_in_s is not None:
        CeleryQueue(settings, celery_app).enqueue(int(message_id), result.requeue_in_s)
    return result.outcome.value


def sweep_once(queue: CeleryQueue) -> None:
    requeue = get_pipeline().sweep().requeue
    if requeue:
        queue.enqueue_many(requeue)


_consumer_ready = threading.Event()


@worker_ready.connect
def _on_ready(**_: object) -> None:
    _consumer_ready.set()


def _beat(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        log.warning("cannot write the heartbeat file %s", path)


def _housekeeping(stop: threading.Event) -> None:
    """Heartbeat for the container health check, the periodic sweep, the backlog metric."""
    queue = CeleryQueue(settings, celery_app)
    beat = heartbeat_path()
    next_sweep = time.monotonic() + settings.sweep_interval_s
    publisher: BacklogPublisher | None = None
    next_metric = time.monotonic()
    while not stop.wait(min(10.0, settings.sweep_interval_s)):
        if _consumer_ready.is_set():
            _beat(beat)
        if settings.backlog_metric_namespace and time.monotonic() >= next_metric:
            next_metric = time.monotonic() + settings.backlog_metric_interval_s
            try:
                publisher = publisher or BacklogPublisher(settings, get_pipeline().db)
                publisher.publish()
            except Exception:
                log.exception("publishing the worker metrics failed")
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + settings.sweep_interval_s
            try:
                sweep_once(queue)
            except Exception:
                log.exception("sweep failed")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.auto_migrate:
        from .migrate import upgrade_or_exit

        upgrade_or_exit(settings)
    stop = threading.Event()
    threading.Thread(target=_housekeeping, args=(stop,), name="housekeeping", daemon=True).start()
    args = [
        "worker",
        "--loglevel=INFO",
        f"--pool={settings.worker_pool}",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={settings.celery_queue}",
        "--without-gossip",
        "--without-mingle",
        *(sys.argv[1:] if argv is None else argv),
    ]
    try:
        celery_app.worker_main(args)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
