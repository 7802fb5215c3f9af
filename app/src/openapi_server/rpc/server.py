"""Running a service: grpc.aio server, health, reflection, interceptors, graceful stop.

    coldreach-app serve-clients      the Client Service on GRPC_BIND:GRPC_PORT
    coldreach-app serve-campaigns    the Campaign Service (needs CLIENT_SERVICE_ADDR)

Health is the standard `grpc.health.v1.Health` (kubelet gRPC probes, GA in Kubernetes
1.27): SERVING for "" and the service once it listens; on SIGTERM every status turns
NOT_SERVING first, then in-flight calls get GRPC_SHUTDOWN_GRACE_S to finish.
Reflection (grpcurl, debugging) is on unless GRPC_REFLECTION=0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from .. import tracing
from ..config import Settings, settings_or_exit
from ..mailer import make_mailer
from ..pipeline import Pipeline
from ..queues import QueueBackend, make_queue
from ..sharding.schema import upgrade_all
from .campaign_service import CampaignService
from .channels import CAMPAIGNS, CLIENTS, aio_channel
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

    server: grpc.aio.Server
    health: health_aio.HealthServicer
    port: int
    closers: list[Callable[[], Any]] = field(default_factory=list)

    async def stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING: probes and balancers leave
        await self.server.stop(grace_s)
        for close in self.closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def start(
    service_name: str,
    add: Callable[[grpc.aio.Server], None],
    settings: Settings,
    provider: TracerProvider | None,
    port: int | None = None,
) -> Running:
    server = grpc.aio.server(
        interceptors=[*tracing.grpc_server_interceptors(provider), WorkspaceServerInterceptor()],
        options=[
            ("grpc.max_connection_age_ms", int(settings.grpc_max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(settings.grpc_shutdown_grace_s * 1000)),
        ],
    )
    add(server)
    checks = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    if settings.grpc_reflection:
        names = (service_name, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(
        f"{settings.grpc_bind}:{settings.grpc_port if port is None else port}"
    )
    await server.start()
    for name in ("", service_name):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s listening on port %s", service_name, bound)
    return Running(server=server, health=checks, port=bound)


async def start_clients(
    settings: Settings, sessions: Sessions, provider: TracerProvider | None, port: int | None = None
) -> Running:
    def add(server: grpc.aio.Server) -> None:
        clients_pb2_grpc.add_ClientServiceServicer_to_server(ClientService(sessions), server)

    return await start(CLIENTS, add, settings, provider, port)


async def start_campaigns(
    settings: Settings,
    sessions: Sessions,
    queue: QueueBackend,
    provider: TracerProvider | None,
    port: int | None = None,
) -> Running:
    if settings.client_service_addr is None:
        raise ValueError("the Campaign Service needs CLIENT_SERVICE_ADDR")
    channel = aio_channel(settings.client_service_addr, provider)
    service = CampaignService(
        sessions,
        clients_pb2_grpc.ClientServiceStub(channel),
        queue.enqueue,
        settings.grpc_deadline_s,
        settings.daily_send_quota,
        queue.stage,
    )

    def add(server: grpc.aio.Server) -> None:
        campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(service, server)

    running = await start(CAMPAIGNS, add, settings, provider, port)
    running.closers.append(channel.close)
    return running


async def _serve(which: str, settings: Settings) -> None:
    provider = tracing.provider_from_env(f"coldreach-{which}")
    if settings.auto_migrate:
        upgrade_all(settings)
    sessions, databases, close = open_sessions(settings)
    queue: QueueBackend | None = None
    if which == "clients":
        running = await start_clients(settings, sessions, provider)
    else:
        if settings.db_shards and settings.queue_backend != "kafka":
            raise SystemExit("with DB_SHARD_n the Campaign Service needs QUEUE_BACKEND=kafka")
        db = next(iter(databases.values()))
        pipeline = Pipeline(db, make_mailer(settings), settings)
        queue = make_queue(settings, pipeline, databases)
        queue.start()
        running = await start_campaigns(settings, sessions, queue, provider)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(f"{which} service ready on port {running.port}", flush=True)
    await stopping.wait()
    log.info("stopping: draining for up to %ss", settings.grpc_shutdown_grace_s)
    await running.stop(settings.grpc_shutdown_grace_s)
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
    asyncio.run(_serve(which, settings))
    return 0
