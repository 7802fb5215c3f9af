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
from pathlib import Path

from ..config import settings_or_exit
from ..db import Database
from ..healthcheck import heartbeat_path
from ..mailer import make_mailer
from ..pipeline import Pipeline
from .consumer import SendConsumer
from .relay import Relay, RelayThread
from .topics import Topics, topic_admin

log = logging.getLogger("openapi_server.kafka.consume")

HEARTBEAT_EVERY_S = 10.0


class Heartbeat:
    def __init__(self, path: Path, ready: threading.Event) -> None:
        self.path = path
        self.ready = ready
        self._next = 0.0

    def __call__(self) -> None:
        if not self.ready.is_set() or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + HEARTBEAT_EVERY_S
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError:
            log.warning("cannot write the heartbeat file %s", self.path)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_or_exit()
    if settings.queue_backend != "kafka":
        log.error("consume needs QUEUE_BACKEND=kafka (got %s)", settings.queue_backend)
        return 2
    if settings.auto_migrate:
        from ..migrate import upgrade_or_exit

        upgrade_or_exit(settings)
    topic_admin(settings).ensure(Topics.from_settings(settings))
    db = Database(
        settings.with_(db_pool_size=max(settings.db_pool_size, settings.kafka.concurrency + 2))
    )
    pipeline = Pipeline(db, make_mailer(settings), settings)
    relay = RelayThread(Relay(settings, {"default": db}, sweep=True))
    consumer = SendConsumer(settings, pipeline)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    relay.start()
    try:
        consumer.run(stop, on_idle=Heartbeat(heartbeat_path(), consumer.assigned))
    finally:
        relay.stop()
        db.dispose()
    log.info("stopped after %d record(s)", consumer.processed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
