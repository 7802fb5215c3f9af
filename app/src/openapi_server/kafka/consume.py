"""`coldreach-app consume`: one member of the sender fleet (QUEUE_BACKEND=kafka).

Runs the consumer (records -> pipeline, offsets stored after the outcome), a relay
that publishes this database's outbox, and the sweeper (stuck sends flagged, due
retries and lost records staged again). Stops on SIGTERM/SIGINT after the records in
flight have finished and their offsets are committed. Touches
`$DATA_DIR/worker-heartbeat` for `coldreach-app healthcheck --worker`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings, default_directory_url, settings_or_exit
from ..db import Database
from ..healthcheck import heartbeat_path
from ..mailer import make_mailer
from ..pipeline import Pipeline
from .consumer import SendConsumer, SessionFor
from .relay import Relay, RelayThread
from .topics import Topics, topic_admin

log = logging.getLogger("openapi_server.kafka.consume")

HEARTBEAT_EVERY_S = 10.0
# Connections to the directory for the send-time suppression check, per process.
DIRECTORY_CONNECTIONS = 4
# How long a send waits for one of them. It holds its shard's claim meanwhile, so with a
# slow directory it gives up soon and the message is retried later, never sent unchecked.
DIRECTORY_WAIT_S = 2.0


class Heartbeat:
    """Touched from the poll loop: alive means polling, with or without partitions.

    A member waiting in a rebalance (a dead member holds partitions until the session
    timeout), or one of more members than partitions, is healthy and must not be
    restarted by its probe.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._next = 0.0

    def __call__(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + HEARTBEAT_EVERY_S
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError:
            log.warning("cannot write the heartbeat file %s", self.path)


def _databases(
    settings: Settings,
) -> tuple[dict[str, Database], SessionFor | None, Database | None, Callable[[], None]]:
    """The databases whose outboxes this process relays, how a record finds its rows, the
    directory the send-time check reads, and how to close them.

    One database: its outbox, and the pipeline's own connection (no routing, no
    directory). With shards, every shard's database (one outbox and relay each), the
    router's `session_for(client_id)` for the claim and the outcome, and the directory,
    where suppressions and workspace unsubscribes live.
    """
    if settings.db_shards:
        from ..sharding import ShardRouter

        router = ShardRouter.from_settings(settings)
        # The send-time check holds a directory connection for one SELECT: a few shared
        # by every send thread, instead of a pool as large as the shards' (connections
        # are what a PostgreSQL server runs out of first).
        directory = Database(
            settings.with_(
                database_url=settings.db_directory_url
                or default_directory_url(settings.db_shards[0]),
                database_read_url=None,
                db_pool_size=DIRECTORY_CONNECTIONS,
                db_max_overflow=0,
                db_pool_timeout_s=DIRECTORY_WAIT_S,
            )
        )

        def close() -> None:
            router.dispose()
            directory.dispose()

        return router.shards(), router.session_for, directory, close
    db = Database(settings)
    return {"default": db}, None, None, db.dispose


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_or_exit()
    if settings.queue_backend != "kafka":
        log.error("consume needs QUEUE_BACKEND=kafka (got %s)", settings.queue_backend)
        return 2
    if settings.auto_migrate:
        if settings.db_shards:
            from ..sharding.schema import upgrade_all

            upgrade_all(settings)
        else:
            from ..migrate import upgrade_or_exit

            upgrade_or_exit(settings)
    topic_admin(settings).ensure(Topics.from_settings(settings))
    # Every send thread may hold a connection for its claim and its result.
    pooled = settings.with_(db_pool_size=max(settings.db_pool_size, settings.kafka.concurrency + 2))
    databases, sessions, directory, close = _databases(pooled)
    db = next(iter(databases.values()))
    pipeline = Pipeline(db, make_mailer(settings), settings, directory=directory)
    relay = RelayThread(Relay(settings, databases, sweep=True))
    consumer = SendConsumer(settings, pipeline, sessions)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    relay.start()
    try:
        consumer.run(stop, on_idle=Heartbeat(heartbeat_path()))
    finally:
        relay.stop()
        close()
    log.info("stopped after %d record(s)", consumer.processed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
