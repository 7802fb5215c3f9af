"""`coldreach-app serve-phase3`: the phase-3 app on one machine, each service its own process.

    make app PHASE=3 [PORT=8000] [DATA_DIR=./var]

Starts the Client Service and the Campaign Service on free loopback ports, then the HTTP
edge on PORT (127.0.0.1) pointed at them, all on the same settings. PHASE=3 (set by
`make app PHASE=3`) without database variables shards by default: two SQLite shards and
the directory under DATA_DIR (DB_SHARD_n point it at PostgreSQL instead). Sharded, the
Campaign Service queues on Kafka: with no KAFKA_BOOTSTRAP_SERVERS this process starts
librdkafka's mock cluster (KAFKA_MOCK_BROKERS brokers, default 3) and hands its
bootstrap address to the others, and a `coldreach-app consume` process sends. The
migrations run once, before any of them. Ctrl-C or SIGTERM stops the edge first, then
the services and the sender. `coldreach-app create-key` with the same PHASE and DATA_DIR
(or database variables) mints keys for it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Settings, settings_or_exit
from ..sharding.schema import upgrade_all

if TYPE_CHECKING:
    from ..kafka.clients import MockCluster

READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], env: dict[str, str], log: Path | None) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log is not None else None
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while b"ready on port" not in log.read_bytes():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {READY_TIMEOUT_S:.0f} s (see {log})")
        time.sleep(0.1)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:  # the edge first: no new calls reach the services while they drain
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kafka_env(settings: Settings) -> tuple[dict[str, str], MockCluster | None]:
    """Sharded: the Kafka variables every process gets, and the mock cluster if this
    process runs it (it lives as long as this object)."""
    if not settings.db_shards:
        return {}, None
    env = {"QUEUE_BACKEND": "kafka", "KAFKA_CREATE_TOPICS": "0"}
    if settings.queue_backend == "kafka" and settings.kafka.bootstrap_servers:
        return {"KAFKA_CREATE_TOPICS": os.environ.get("KAFKA_CREATE_TOPICS", "1")}, None
    from ..kafka.clients import MockCluster  # confluent-kafka only where it is used

    mock = MockCluster(settings.kafka.mock_brokers or 3)
    env["KAFKA_BOOTSTRAP_SERVERS"] = mock.bootstrap_servers
    return env, mock


def main(argv: list[str]) -> int:
    if argv:
        print("serve-phase3 takes no arguments (PORT, DATA_DIR and the rest from the environment)")
        return 2
    settings = settings_or_exit()
    upgrade_all(settings)  # once, before the processes open the databases
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    clients_port, campaigns_port = _free_port(), _free_port()
    kafka_env, mock = _kafka_env(settings)
    base = {
        **os.environ,
        **kafka_env,
        "AUTO_MIGRATE": "0",
        "GRPC_BIND": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    base.pop("CAMPAIGN_SERVICE_ADDR", None)
    if mock is not None:
        base.pop("KAFKA_MOCK_BROKERS", None)
    command = [sys.executable, "-m", "openapi_server.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        clients_log, campaigns_log = logs / "clients.log", logs / "campaigns.log"
        clients = _start(
            [*command, "serve-clients"], {**base, "GRPC_PORT": str(clients_port)}, clients_log
        )
        procs.insert(0, clients)
        campaigns_env = {
            **base,
            "GRPC_PORT": str(campaigns_port),
            "CLIENT_SERVICE_ADDR": f"127.0.0.1:{clients_port}",
        }
        campaigns = _start([*command, "serve-campaigns"], campaigns_env, campaigns_log)
        procs.insert(0, campaigns)
        if settings.db_shards:  # the sender: consumer, every shard's relay, sweeper
            procs.append(_start([*command, "consume"], base, logs / "consume.log"))
        _wait_ready(clients, clients_log, "the Client Service")
        _wait_ready(campaigns, campaigns_log, "the Campaign Service")
        edge_env = {
            **base,
            # The edge only reads and writes global data; the services send.
            "QUEUE_BACKEND": "inline",
            "CLIENT_SERVICE_ADDR": f"127.0.0.1:{clients_port}",
            "CAMPAIGN_SERVICE_ADDR": f"127.0.0.1:{campaigns_port}",
            # The Campaign Service sends and sweeps; the edge's own queue stays idle.
            "SWEEP_INTERVAL_S": "3600",
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "openapi_server.main:app"]
        edge = _start(
            [*uvicorn, "--host", "127.0.0.1", "--port", str(settings.port)], edge_env, None
        )
        procs.insert(0, edge)
        shards = f"{len(settings.db_shards)} shards" if settings.db_shards else "one database"
        kafka = (
            f", Kafka {base['KAFKA_BOOTSTRAP_SERVERS']}"
            if kafka_env.get("KAFKA_BOOTSTRAP_SERVERS")
            else ""
        )
        print(
            f"phase 3 ({shards}{kafka}): Client Service 127.0.0.1:{clients_port}, Campaign "
            f"Service 127.0.0.1:{campaigns_port}, HTTP API http://127.0.0.1:{settings.port} "
            f"(service logs in {logs})",
            flush=True,
        )
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        failed = [p for p in procs if p.poll() not in (None, 0)]
        return 1 if failed and not stopping else 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(procs)
        if mock is not None:
            mock.close()
