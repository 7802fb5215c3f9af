"""Running a service: gRPC server, health, reflection, interceptors, graceful stop.

    coldreach-app serve-clients      the Client Service on GRPC_BIND:GRPC_PORT
    coldreach-app serve-campaigns    the Campaign Service (needs CLIENT_SERVICE_ADDR)

Health is the standard `grpc.health.v1.Health` (kubelet gRPC probes, GA in Kubernetes
1.27): SERVING for "" and the service once it listens; on SIGTERM every status turns
NOT_SERVING first, then in-flight calls get GRPC_SHUTDOWN_GRACE_S to finish.
Reflection (grpcurl, debugging) is on unless GRPC_REFLECTION=0.

The server runs each call's handler on its thread pool. The handlers' database work
blocks (SQLAlchemy on psycopg), so a call runs where it is received; an asyncio server
would hand every call to a thread of its own, which costs more per call than the work
of a lookup (benchmarks/app_grpc_tasks.py).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .. import tracing
from ..config import Settings, settings_or_exit
from ..mailer import make_mailer
from ..pipeline import Pipeline
from ..queues import QueueBackend, make_queue
from ..sharding.schema import upgrade_all
from .campaign_service import CampaignService
from .channels import CAMPAIGNS, CLIENTS, blocking_channel
from .client_service import ClientService
from .gen.coldreach.campaigns.v1 import campaigns_pb2_grpc
from .gen.coldreach.clients.v1 import clients_pb2_grpc
from .sessions import Sessions
from .sharded import open_sessions
from .workspace import WorkspaceServerInterceptor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


@dataclass
class Running:
    """A started server and what to close after it."""

    server: grpc.Server
    health: ProbedHealth
    port: int
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def stop(self, grace_s: float) -> None:
        self.health.enter_graceful_shutdown()  # NOT_SERVING: probes and balancers leave
        self.server.stop(grace_s).wait()
        for close in self.closers:
            close()


class ProbedHealth(health.HealthServicer):
    """`grpc.health.v1` whose Check runs on threads of its own.

    Every other call runs on the server's pool, and a burst or a slow database can keep
    all of its threads busy; a probe queued behind them would time out (the kubelet waits
    1 s) and the kubelet would restart every replica of a service that is merely busy.
    grpc's server runs a handler on the `experimental_thread_pool` its function carries.
    """

    def Check(self, request: Any, context: Any) -> Any:
        return super().Check(request, context)


PROBE_THREADS = 2
setattr(  # noqa: B010  (an attribute of the function itself, where grpc looks for it)
    ProbedHealth.Check,
    "experimental_thread_pool",
    futures.ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="health"),
)


def workers(settings: Settings) -> int:
    """Handler threads: one per database connection the pool may open (a call holds one
    while it runs); calls beyond them wait in the server's queue, within their deadline."""
    return max(4, settings.db_pool_size + settings.db_max_overflow)


def start(
    service_name: str,
    add: Callable[[grpc.Server], None],
    settings: Settings,
    provider: TracerProvider | None,
    port: int | None = None,
) -> Running:
    server = grpc.server(
        futures.ThreadPoolExecutor(workers(settings), thread_name_prefix=service_name),
        interceptors=[*tracing.grpc_server_interceptors(provider), WorkspaceServerInterceptor()],
        options=[
            ("grpc.max_connection_age_ms", int(settings.grpc_max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(settings.grpc_shutdown_grace_s * 1000)),
        ],
    )
    add(server)
    checks = ProbedHealth()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    if settings.grpc_reflection:
        names = (service_name, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(
        f"{settings.grpc_bind}:{settings.grpc_port if port is None else port}"
    )
    server.start()
    for name in ("", service_name):
        checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s listening on port %s", service_name, bound)
    return Running(server=server, health=checks, port=bound)


def start_clients(
    settings: Settings, sessions: Sessions, provider: TracerProvider | None, port: int | None = None
) -> Running:
    def add(server: grpc.Server) -> None:
        clients_pb2_grpc.add_ClientServiceServicer_to_server(ClientService(sessions), server)

    return start(CLIENTS, add, settings, provider, port)


def start_campaigns(
    settings: Settings,
    sessions: Sessions,
    queue: QueueBackend,
    provider: TracerProvider | None,
    port: int | None = None,
) -> Running:
    if settings.client_service_addr is None:
        raise ValueError("the Campaign Service needs CLIENT_SERVICE_ADDR")
    channel = blocking_channel(settings.client_service_addr, provider)
    service = CampaignService(
        sessions,
        clients_pb2_grpc.ClientServiceStub(channel),
        queue.enqueue,
        settings.grpc_deadline_s,
        settings.daily_send_quota,
        queue.stage,
    )

    def add(server: grpc.Server) -> None:
        campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(service, server)

    running = start(CAMPAIGNS, add, settings, provider, port)
    running.closers.append(channel.close)
    return running


def _serve(which: str, settings: Settings) -> None:
    provider = tracing.provider_from_env(f"coldreach-{which}")
    if settings.auto_migrate:
        upgrade_all(settings)
    sessions, databases, close = open_sessions(settings)
    queue: QueueBackend | None = None
    if which == "clients":
        running = start_clients(settings, sessions, provider)
    else:
        if settings.db_shards and settings.queue_backend != "kafka":
            raise SystemExit("with DB_SHARD_n the Campaign Service needs QUEUE_BACKEND=kafka")
        db = next(iter(databases.values()))
        pipeline = Pipeline(db, make_mailer(settings), settings)
        queue = make_queue(settings, pipeline, databases)
        queue.start()
        running = start_campaigns(settings, sessions, queue, provider)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stopping.set())
    print(f"{which} service ready on port {running.port}", flush=True)
    while not stopping.wait(1.0):
        pass
    log.info("stopping: draining for up to %ss", settings.grpc_shutdown_grace_s)
    running.stop(settings.grpc_shutdown_grace_s)
    if queue is not None:
        queue.stop()
    close()
    if provider is not None:
        provider.shutdown()


def main_clients(argv: list[str]) -> int:
    return _main("clients", argv)


def main_campaigns(argv: list[str]) -> int:
    return _main("campaigns", argv)


def _main(which: str, argv: list[str]) -> int:
    if argv:
        print(f"serve-{which} takes no arguments (settings come from the environment)")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_or_exit()
    if which == "campaigns" and settings.client_service_addr is None:
        print("configuration error: serve-campaigns needs CLIENT_SERVICE_ADDR")
        return 2
    _serve(which, settings)
    return 0
