"""The phase-3 services in-process: both gRPC servers on 127.0.0.1:0.

On one database, or on the ShardRouter when the settings name DB_SHARD_n (then the queue
is Kafka, and `consume=True` runs a consumer as `coldreach-app consume` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.mailer import Mailer, make_mailer
from openapi_server.pipeline import Pipeline
from openapi_server.queues import QueueBackend, make_queue
from openapi_server.rpc.server import Running, start_campaigns, start_clients
from openapi_server.rpc.sessions import Sessions
from openapi_server.rpc.sharded import open_sessions

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


# GRPC_DEADLINE_S for tests that check what the services answer, not their deadlines: on
# a loaded machine, with the servers, the edge and the client in one process, a call and
# the nested GetClient it makes (a first connection, database sessions) can take seconds.
ANSWER_DEADLINE_S = 30.0


@dataclass
class Services:
    clients: Running
    campaigns: Running
    db: Database
    queue: QueueBackend
    sessions: Sessions
    databases: dict[str, Database]

    def edge_settings(self, settings: Settings) -> Settings:
        return settings.with_(
            client_service_addr=f"127.0.0.1:{self.clients.port}",
            campaign_service_addr=f"127.0.0.1:{self.campaigns.port}",
        )


@contextmanager
def running_services(
    settings: Settings,
    provider: TracerProvider | None = None,
    mailer: Mailer | None = None,
    client_service_addr: str | None = None,
    consume: bool = False,
) -> Iterator[Services]:
    """Client and Campaign services on one database; the Campaign Service's queue sends.

    `client_service_addr` points the Campaign Service elsewhere (a stopped or stalled
    Client Service) instead of at the Client Service started here.
    """
    sessions, databases, close = open_sessions(settings)
    db = next(iter(databases.values()))
    local = settings.with_(grpc_bind="127.0.0.1")
    # As `coldreach-app consume` builds it: with shards, sends also check the directory.
    router = getattr(sessions, "router", None)
    directory = router.directory_database if router is not None else None
    pipeline = Pipeline(db, mailer or make_mailer(settings), settings, directory=directory)
    queue = make_queue(settings, pipeline, databases)
    queue.start()
    stack = ExitStack()
    if consume:
        from app_kafka import running_consumer

        routed = sessions.session_for if settings.db_shards else None
        stack.enter_context(running_consumer(settings, pipeline, routed))
    clients = start_clients(local, sessions, provider, port=0)
    target = client_service_addr or f"127.0.0.1:{clients.port}"
    campaigns = start_campaigns(
        local.with_(client_service_addr=target), sessions, queue, provider, port=0
    )
    try:
        yield Services(clients, campaigns, db, queue, sessions, databases)
    finally:
        campaigns.stop(0.5)
        clients.stop(0.5)
        stack.close()
        queue.stop()
        close()
