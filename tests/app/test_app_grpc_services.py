"""The Client and Campaign services over real gRPC (servers on 127.0.0.1:0).

CreateTask validates the client through GetClient: NOT_FOUND writes nothing, and a
Client Service that is down or stalled fails the call within its deadline. Plus the
standard health service, reflection, the workspace interceptor, retries of read-only
calls only, and round robin over several addresses.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest
from app_helpers import wait_for, worker_env
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from openapi_server.apikeys import get_or_create_workspace
from openapi_server.config import Settings
from openapi_server.db import Task
from openapi_server.rpc import campaign_service
from openapi_server.rpc import server as rpc_server
from openapi_server.rpc.channels import CLIENTS, blocking_channel
from openapi_server.rpc.gen.coldreach.campaigns.v1 import campaigns_pb2 as cpb
from openapi_server.rpc.gen.coldreach.campaigns.v1 import campaigns_pb2_grpc as cpb_grpc
from openapi_server.rpc.gen.coldreach.clients.v1 import clients_pb2 as pb
from openapi_server.rpc.gen.coldreach.clients.v1 import clients_pb2_grpc as pb_grpc
from openapi_server.rpc.workspace import METADATA_KEY, acting_for
from opentelemetry.sdk.trace import TracerProvider
from rpc_harness import Services, running_services
from sqlalchemy import func, make_url, select

# The deadline of the tests that check deadlines, against a peer that never answers: the
# call must end within it plus HANG_SLACK_S, far below the longer deadline (CALL_S or
# LONG_DEADLINE_S) that would end it if the one under test were not applied.
DEADLINE_S = 2.0
HANG_SLACK_S = 8.0
LONG_DEADLINE_S = 60.0
# Every other call's deadline, and GRPC_DEADLINE_S for the nested GetClient: those tests
# check answers, and a first connection plus a PostgreSQL session on a loaded machine
# (servers and client in one process) may take well over a second.
CALL_S = 30.0


@pytest.fixture
def grpc_settings(pg_settings: Settings, clean_pg: None) -> Settings:
    return pg_settings.with_(grpc_deadline_s=CALL_S)


@pytest.fixture
def services(grpc_settings: Settings) -> Iterator[Services]:
    with running_services(grpc_settings) as running:
        yield running


def _workspaces(services: Services) -> tuple[int, int]:
    with services.db.session() as s:
        mine = get_or_create_workspace(s, "mine").id
        theirs = get_or_create_workspace(s, "theirs").id
        s.commit()
    return mine, theirs


def _stubs(services: Services) -> tuple[pb_grpc.ClientServiceStub, cpb_grpc.CampaignServiceStub]:
    return (
        pb_grpc.ClientServiceStub(blocking_channel(f"127.0.0.1:{services.clients.port}")),
        cpb_grpc.CampaignServiceStub(blocking_channel(f"127.0.0.1:{services.campaigns.port}")),
    )


def _task_count(services: Services) -> int:
    with services.db.session() as s:
        return s.scalar(select(func.count()).select_from(Task)) or 0


def test_create_task_checks_the_client_through_get_client(services: Services) -> None:
    mine, theirs = _workspaces(services)
    clients, campaigns = _stubs(services)
    with acting_for(theirs):
        foreign = clients.CreateClient(
            pb.CreateClientRequest(name="T", email="t@example.com"), timeout=CALL_S
        ).client.id
    with acting_for(mine):
        client = clients.CreateClient(
            pb.CreateClientRequest(name="A", email="a@example.com", company="Acme"), timeout=CALL_S
        ).client
        assert client.company == "Acme" and client.status == pb.CLIENT_STATUS_ACTIVE
        task = campaigns.CreateTask(
            cpb.CreateTaskRequest(client_id=client.id, title="Call"), timeout=CALL_S
        ).task
        assert (task.client_id, task.title, task.done) == (client.id, "Call", False)
        assert _task_count(services) == 1

        for missing in (client.id + 1000, foreign):  # absent, and another workspace's
            with pytest.raises(grpc.RpcError) as refused:
                campaigns.CreateTask(
                    cpb.CreateTaskRequest(client_id=missing, title="X"), timeout=CALL_S
                )
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
            assert f"client {missing} not found" in refused.value.details()  # type: ignore[attr-defined]
        assert _task_count(services) == 1  # nothing written


@pytest.mark.parametrize("fault", ["down", "stalled"])
def test_create_task_fails_within_its_deadline_when_the_client_service_fails(
    grpc_settings: Settings, fault: str
) -> None:
    """Down: connection refused (UNAVAILABLE). Stalled: accepts, never answers."""
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(16)  # the kernel accepts connections; nobody speaks HTTP/2 on them
    address = f"127.0.0.1:{stall.getsockname()[1]}"
    if fault == "down":
        stall.close()  # nothing listens there any more
    try:
        settings = grpc_settings.with_(grpc_deadline_s=DEADLINE_S)
        with running_services(settings, client_service_addr=address) as services:
            mine, _ = _workspaces(services)
            _, campaigns = _stubs(services)
            with acting_for(mine):
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as failed:
                    # The edge's deadline (CALL_S) is far longer than the Campaign
                    # Service's own: the stalled peer would hold the call until it.
                    campaigns.CreateTask(
                        cpb.CreateTaskRequest(client_id=1, title="X"), timeout=CALL_S
                    )
                elapsed = time.monotonic() - started
            code = failed.value.code()  # type: ignore[attr-defined]
            assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            # The Campaign Service answered (its deadline ran out), not the edge's timeout.
            assert failed.value.details().startswith("client service: ")  # type: ignore[attr-defined]
            # A hang guard, not a measurement: GRPC_DEADLINE_S plus seconds of slack for a
            # loaded machine, still far below CALL_S, which a missing deadline would reach.
            assert elapsed < DEADLINE_S + HANG_SLACK_S, f"took {elapsed:.2f}s"
            assert _task_count(services) == 0
    finally:
        stall.close()


def test_the_caller_deadline_bounds_the_nested_get_client(
    grpc_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller's shorter deadline wins over GRPC_DEADLINE_S for the nested call."""
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(16)
    address = f"127.0.0.1:{stall.getsockname()[1]}"
    caplog.set_level(logging.WARNING, logger=campaign_service.__name__)
    try:
        # The stalled peer would hold the nested GetClient this long under its own deadline.
        settings = grpc_settings.with_(grpc_deadline_s=LONG_DEADLINE_S)
        with running_services(settings, client_service_addr=address) as services:
            mine, _ = _workspaces(services)
            _, campaigns = _stubs(services)
            with acting_for(mine):
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as failed:
                    campaigns.CreateTask(
                        cpb.CreateTaskRequest(client_id=1, title="X"), timeout=DEADLINE_S
                    )
            assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]

            def gave_up() -> bool:
                return any(
                    "GetClient failed: DEADLINE_EXCEEDED" in r.getMessage() for r in caplog.records
                )

            # The nested call itself ended with the caller's deadline (the caller's own
            # timeout says nothing about it): well before LONG_DEADLINE_S, with seconds of
            # slack for a loaded machine.
            wait_for(gave_up, timeout=DEADLINE_S + HANG_SLACK_S)
            elapsed = time.monotonic() - started
            assert elapsed < DEADLINE_S + HANG_SLACK_S, f"took {elapsed:.2f}s"
    finally:
        stall.close()


def test_calls_without_a_workspace_are_refused(services: Services) -> None:
    clients, _ = _stubs(services)
    with pytest.raises(grpc.RpcError) as refused:
        clients.GetClient(pb.GetClientRequest(client_id=pb.ClientId(id=1)), timeout=CALL_S)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    raw = grpc.insecure_channel(f"127.0.0.1:{services.clients.port}")
    stub = pb_grpc.ClientServiceStub(raw)
    for bad in ("0", "-1", "abc", "2147483648", "99999999999"):
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetClient(
                pb.GetClientRequest(client_id=pb.ClientId(id=1)),
                timeout=CALL_S,
                metadata=((METADATA_KEY, bad),),
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    raw.close()


def test_health_and_reflection(services: Services) -> None:
    for running, name in (
        (services.clients, "coldreach.clients.v1.ClientService"),
        (services.campaigns, "coldreach.campaigns.v1.CampaignService"),
    ):
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        checks = health_pb2_grpc.HealthStub(channel)
        for service in ("", name):
            reply = checks.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_S)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=CALL_S
        )
        listed = {s.name for r in replies for s in r.list_services_response.service}
        assert {name, "grpc.health.v1.Health"} <= listed
        channel.close()


def test_graceful_stop_reports_not_serving_first(grpc_settings: Settings) -> None:
    with running_services(grpc_settings) as services:
        channel = grpc.insecure_channel(f"127.0.0.1:{services.clients.port}")
        checks = health_pb2_grpc.HealthStub(channel)
        watch = checks.Watch(health_pb2.HealthCheckRequest(service=""), timeout=CALL_S)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        # The open Watch is an in-flight call: stop waits for it through its grace, so the
        # status change arrives while the server drains, whatever the machine's speed.
        stopping = threading.Thread(target=services.clients.stop, args=(CALL_S,))
        stopping.start()
        try:
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            watch.cancel()  # the last call ends: stop returns without using its grace
            stopping.join(CALL_S)
        assert not stopping.is_alive()
        channel.close()
        # running_services stops it again on exit: stopping twice is harmless


class Held(pb_grpc.ClientServiceServicer):
    """Holds a handler thread until released, as a call waiting on a slow database does."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)  # one release per handler that started
        self.release = threading.Event()

    def GetClient(self, request, context):  # type: ignore[no-untyped-def]
        self.entered.release()
        self.release.wait()
        return pb.GetClientResponse(client=pb.Client(id=request.client_id.id))


@pytest.mark.parametrize("traced", [False, True], ids=["untraced", "traced"])
def test_probes_answer_while_every_handler_thread_is_busy(traced: bool) -> None:
    """The kubelet's gRPC probe gives up after 1 s: with the pool full of slow calls, a
    probe queued behind them would fail and get every busy replica restarted."""
    settings = Settings(
        database_url=make_url("sqlite://"), grpc_bind="127.0.0.1", db_pool_size=1, db_max_overflow=0
    )
    pool = rpc_server.workers(settings)
    assert pool == 4
    provider = TracerProvider() if traced else None
    held = Held()

    def add(grpc_server: grpc.Server) -> None:
        pb_grpc.add_ClientServiceServicer_to_server(held, grpc_server)

    running = rpc_server.start(CLIENTS, add, settings, provider, port=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        stub = pb_grpc.ClientServiceStub(channel)
        request = pb.GetClientRequest(client_id=pb.ClientId(id=1))
        busy = [
            stub.GetClient.future(request, metadata=((METADATA_KEY, "1"),), timeout=CALL_S)
            for _ in range(2 * pool)  # twice the pool: four run, four queue
        ]
        for _ in range(pool):  # every handler thread is inside a held call
            assert held.entered.acquire(timeout=CALL_S), "the held calls did not start"
        checks = health_pb2_grpc.HealthStub(channel)
        # The held calls never finish while the probe waits: a probe queued behind them
        # would run out its deadline (DEADLINE_EXCEEDED), however long; one on threads
        # of its own answers. 10 s only keeps a broken build from waiting forever.
        answer = checks.Check(health_pb2.HealthCheckRequest(service=""), timeout=10.0)  # type: ignore[attr-defined]
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        # The pool was full all along: no fifth call started, none finished.
        assert not held.entered.acquire(timeout=0)
        assert not any(call.done() for call in busy)
    finally:
        held.release.set()
        channel.close()
        running.stop(0)


class FlakyClients(pb_grpc.ClientServiceServicer):
    """Fails the first call of each method with UNAVAILABLE, then answers."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, name: str, context: grpc.ServicerContext) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.calls[name] == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

    def GetClient(self, request, context):  # type: ignore[no-untyped-def]
        self._count("GetClient", context)
        return pb.GetClientResponse(client=pb.Client(id=request.client_id.id))

    def CreateClient(self, request, context):  # type: ignore[no-untyped-def]
        self._count("CreateClient", context)
        return pb.CreateClientResponse(client=pb.Client(id=1))


@contextmanager
def serving(*servicers: pb_grpc.ClientServiceServicer) -> Iterator[list[int]]:
    """Each servicer on a server of its own on 127.0.0.1; their ports."""
    servers = [grpc.server(futures.ThreadPoolExecutor(4)) for _ in servicers]
    ports = []
    for server, servicer in zip(servers, servicers, strict=True):
        pb_grpc.add_ClientServiceServicer_to_server(servicer, server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        server.start()
    try:
        yield ports
    finally:
        for server in servers:
            server.stop(0).wait()


def test_read_only_calls_are_retried_and_writes_are_not() -> None:
    servicer = FlakyClients()
    with serving(servicer) as (port,):
        channel = blocking_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.ClientServiceStub(channel)
        got = stub.GetClient(pb.GetClientRequest(client_id=pb.ClientId(id=7)), timeout=CALL_S)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateClient(pb.CreateClientRequest(name="n", email="e@x.io"), timeout=CALL_S)
        channel.close()
    assert got.client.id == 7
    assert servicer.calls["GetClient"] == 2  # retried by the service config
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert servicer.calls["CreateClient"] == 1  # a write is never retried


class Counting(pb_grpc.ClientServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    def GetClient(self, request, context):  # type: ignore[no-untyped-def]
        self.calls += 1
        return pb.GetClientResponse(client=pb.Client(id=request.client_id.id))


def test_round_robin_spreads_calls_over_every_resolved_address() -> None:
    """As over the pod addresses of a headless Service (here an ipv4: list)."""
    servicers = [Counting(), Counting()]
    with serving(*servicers) as ports:
        channel = blocking_channel(f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}")
        stub = pb_grpc.ClientServiceStub(channel)
        for n in range(20):
            stub.GetClient(pb.GetClientRequest(client_id=pb.ClientId(id=n + 1)), timeout=CALL_S)
        channel.close()
    calls = [s.calls for s in servicers]
    # pick_first would give [20, 0]; round robin alternates once both are connected.
    assert sum(calls) == 20 and min(calls) >= 5, calls


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["serve-clients", "serve-campaigns"])
def test_serve_commands_answer_health_and_stop_on_sigterm(
    grpc_settings: Settings, tmp_path, command: str
) -> None:
    port = _free_port()
    env = worker_env(
        grpc_settings,
        QUEUE_BACKEND="inline",
        GRPC_BIND="127.0.0.1",
        GRPC_PORT=str(port),
        CLIENT_SERVICE_ADDR="127.0.0.1:1",  # the Campaign Service starts without it answering
        GRPC_SHUTDOWN_GRACE_S="1",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openapi_server.cli", command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: b"ready on port" in log.read_bytes(), timeout=30, interval=0.1)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=CALL_S
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
