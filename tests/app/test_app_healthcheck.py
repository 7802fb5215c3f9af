"""The container health probe per role: the gRPC check against a real grpc.health.v1
server, the choice of check from the environment, and the probe as the image runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from openapi_server import healthcheck

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    """A gRPC server on a free loopback port with only the standard health service."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)


def test_grpc_check_passes_only_while_the_server_says_serving(
    health_server: tuple[int, health.HealthServicer],
) -> None:
    port, servicer = health_server
    servicer.set("", SERVING)
    assert healthcheck.check_grpc(port) is True
    servicer.set("", NOT_SERVING)  # what a draining server answers after SIGTERM
    assert healthcheck.check_grpc(port) is False
    # A named service is checked on its own; an unknown one is NOT_FOUND, so unhealthy.
    servicer.set("coldreach.clients.v1.ClientService", SERVING)
    assert healthcheck.check_grpc(port, "coldreach.clients.v1.ClientService") is True
    assert healthcheck.check_grpc(port, "no.such.Service") is False


def test_grpc_check_fails_when_nothing_listens() -> None:
    with socket.socket() as s:  # a port that was free a moment ago, nothing on it now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert healthcheck.check_grpc(port) is False


def test_default_follows_grpc_port_and_flags_win() -> None:
    # The image sets PORT=8000 everywhere, so only GRPC_PORT marks a gRPC server.
    assert healthcheck.mode([], {"PORT": "8000"}) == "http"
    assert healthcheck.mode([], {"PORT": "8000", "GRPC_PORT": "50051"}) == "grpc"
    assert healthcheck.mode([], {"PORT": "8000", "GRPC_PORT": " "}) == "http"
    assert healthcheck.mode(["--http"], {"GRPC_PORT": "50051"}) == "http"
    assert healthcheck.mode(["--grpc"], {}) == "grpc"
    assert healthcheck.mode(["--worker"], {"GRPC_PORT": "50051"}) == "worker"


@pytest.mark.parametrize("args", [[], ["--grpc"], ["--grpc", "--service", "svc.A"]])
def test_probe_command_in_a_process_reads_grpc_port(
    health_server: tuple[int, health.HealthServicer], args: list[str]
) -> None:
    """`python -m openapi_server.healthcheck` as Docker's HEALTHCHECK runs it."""
    port, servicer = health_server
    env = {"PATH": "/usr/bin:/bin", "PORT": "1", "GRPC_PORT": str(port)}
    command = [sys.executable, "-m", "openapi_server.healthcheck", *args]
    probe = lambda: subprocess.run(command, env=env, timeout=30).returncode  # noqa: E731
    servicer.set("svc.A" if "--service" in args else "", SERVING)
    assert probe() == 0
    servicer.set("svc.A" if "--service" in args else "", NOT_SERVING)
    assert probe() == 1
