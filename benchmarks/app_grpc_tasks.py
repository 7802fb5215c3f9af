"""Task creation through the phase-3 edge and gRPC vs the phase-2 monolith, in one run.

Both on one throwaway PostgreSQL database, each as its own processes, as deployed:
- monolith: `uvicorn openapi_server.main:app`;
- phase 3: the same uvicorn app with CLIENT_SERVICE_ADDR/CAMPAIGN_SERVICE_ADDR set, plus
  `coldreach-app serve-clients` and `coldreach-app serve-campaigns`. Each POST /tasks is
  edge -> CreateTask -> GetClient -> insert.
Both stacks run side by side and are driven in alternating rounds (never at once), so
drift in the machine's load hits both alike. POST /tasks is driven sequentially
(per-request overhead) and from 8 keep-alive connections; the load generator shares
the machine's 2 cores with every process. Prints one JSON row per (mode, connections)
over all rounds, the p50 ratios (target <= 1.3), and what the split's shape alone adds
at one connection: two empty gRPC hops and GetClient as a call, measured on the same
processes.

    uv run --frozen python benchmarks/app_grpc_tasks.py
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from app_api import drive as drive_requests
from app_common import app_env, free_port, percentile, stop, throwaway_database
from grpc_health.v1 import health_pb2, health_pb2_grpc
from openapi_server.apikeys import create_key, get_or_create_workspace
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.principal import SCOPES
from openapi_server.rpc.channels import blocking_channel
from openapi_server.rpc.gen.coldreach.clients.v1 import clients_pb2 as pb
from openapi_server.rpc.gen.coldreach.clients.v1 import clients_pb2_grpc as pb_grpc
from openapi_server.rpc.workspace import acting_for
from sqlalchemy.engine import URL

ROUNDS = 6
REQUESTS = 250  # per round, mode and concurrency
WARMUP = 200
CONCURRENCY = (1, 8)


def drive(port: int, headers: dict[str, str], body: str, total: int, connections: int):
    """`total` task creations; anything but 201 counts as an error."""
    request = ("POST", "/tasks", body)
    return drive_requests(
        port, lambda _: request, total, headers, connections, ok=lambda status: status == 201
    )


def _p50_ms(call: Callable[[], object], n: int = 1000) -> float:
    for _ in range(100):
        call()
    took = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    return percentile(took, 50) * 1000


def empty_call_p50(port: int) -> float:
    """A health check over the edge's kind of channel: one hop with no work behind it."""
    channel = blocking_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    try:
        return _p50_ms(lambda: stub.Check(request, timeout=5))  # type: ignore[attr-defined]
    finally:
        channel.close()


def get_client_p50(port: int, workspace_id: int, client_id: int) -> float:
    """GetClient alone, as the Campaign Service calls it."""
    channel = blocking_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.ClientServiceStub(channel)
    request = pb.GetClientRequest(client_id=pb.ClientId(id=client_id))
    try:
        with acting_for(workspace_id):
            return _p50_ms(lambda: stub.GetClient(request, timeout=5))
    finally:
        channel.close()


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_line(log: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: no '{text}'")
        time.sleep(0.1)


@contextmanager
def serving(
    url: URL, phase3: bool, logs: Path, grpc_ports: dict[str, int] | None = None
) -> Iterator[int]:
    base = {"QUEUE_BACKEND": "inline", "DB_POOL_SIZE": "10", "RATE_LIMIT_PER_MINUTE": "100000000"}
    procs: list[subprocess.Popen[bytes]] = []
    extra: dict[str, str] = {}
    if phase3:
        clients, campaigns = free_port(), free_port()
        for command, port, more in (
            ("serve-clients", clients, {}),
            ("serve-campaigns", campaigns, {"CLIENT_SERVICE_ADDR": f"127.0.0.1:{clients}"}),
        ):
            log = logs / f"{command}.log"
            env = app_env(url, **base, GRPC_BIND="127.0.0.1", GRPC_PORT=str(port), **more)
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "openapi_server.cli", command],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_line(log, "ready on port")
        if grpc_ports is not None:
            grpc_ports.update(clients=clients, campaigns=campaigns)
        extra = {
            "CLIENT_SERVICE_ADDR": f"127.0.0.1:{clients}",
            "CAMPAIGN_SERVICE_ADDR": f"127.0.0.1:{campaigns}",
        }
    port = free_port()
    env = app_env(url, **base, **extra, PORT=str(port))
    procs.append(
        subprocess.Popen(
            ["uvicorn", "openapi_server.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    try:
        wait_ready(port)
        yield port
    finally:
        stop(procs)


def main() -> None:
    logs = Path("var/bench-grpc")
    logs.mkdir(parents=True, exist_ok=True)
    with throwaway_database() as url:
        db = Database(Settings(database_url=url, auto_migrate=False))
        with db.session() as s:
            key = create_key(s, "bench", frozenset(SCOPES))
            workspace_id = get_or_create_workspace(s, "bench").id
        db.dispose()
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        services: dict[str, int] = {}
        with (
            serving(url, False, logs) as monolith,
            serving(url, True, logs, services) as phase3,
        ):
            ports = {"monolith": monolith, "phase3": phase3}
            conn = http.client.HTTPConnection("127.0.0.1", monolith, timeout=30)
            client = json.dumps({"name": "Bench", "email": "bench@example.com"})
            conn.request("POST", "/clients", body=client, headers=headers)
            client_id = json.loads(conn.getresponse().read())["id"]
            conn.close()
            body = json.dumps({"client_id": client_id, "title": "Follow up"})
            for port in ports.values():
                drive(port, headers, body, WARMUP, 4)
            latencies: dict[tuple[str, int], list[float]] = {}
            elapsed: dict[tuple[str, int], float] = {}
            errors: dict[tuple[str, int], int] = {}
            for _ in range(ROUNDS):
                for connections in CONCURRENCY:
                    for mode, port in ports.items():
                        took, got, bad = drive(port, headers, body, REQUESTS, connections)
                        latencies.setdefault((mode, connections), []).extend(got)
                        elapsed[(mode, connections)] = elapsed.get((mode, connections), 0) + took
                        errors[(mode, connections)] = errors.get((mode, connections), 0) + bad
            hop = empty_call_p50(services["campaigns"])
            lookup = get_client_p50(services["clients"], workspace_id, client_id)
        for (mode, connections), values in sorted(latencies.items(), key=lambda kv: kv[0][1]):
            row = {
                "mode": mode,
                "connections": connections,
                "requests": len(values),
                "errors": errors[(mode, connections)],
                "req_per_s": round(len(values) / elapsed[(mode, connections)], 1),
                "p50_ms": round(percentile(values, 50) * 1000, 2),
                "p99_ms": round(percentile(values, 99) * 1000, 2),
            }
            print(json.dumps(row), flush=True)
        for connections in CONCURRENCY:
            ratio = percentile(latencies[("phase3", connections)], 50) / percentile(
                latencies[("monolith", connections)], 50
            )
            verdict = "meets" if ratio <= 1.3 else "misses"
            print(
                f"connections={connections}: p50 ratio phase3/monolith = {ratio:.2f} "
                f"({verdict} the <= 1.3 target)"
            )
        # What the split adds by its shape: two hops (edge -> Campaign Service -> Client
        # Service) of an empty call each, and GetClient as a call of its own. The
        # monolith's one SELECT of the client inside its transaction is not taken off.
        monolith_p50 = percentile(latencies[("monolith", 1)], 50) * 1000
        added = 2 * hop + lookup
        print(
            f"connections=1: an empty call is {hop:.2f} ms p50 per hop and GetClient "
            f"{lookup:.2f} ms; together {added:.2f} ms on the monolith's {monolith_p50:.2f} ms "
            f"is a ratio of {(monolith_p50 + added) / monolith_p50:.2f} from the split's shape"
        )


if __name__ == "__main__":
    main()
