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
over all rounds and the p50 ratios (target <= 1.3).

    uv run --frozen python benchmarks/app_grpc_tasks.py
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from app_api import drive as drive_requests
from app_common import app_env, free_port, percentile, stop, throwaway_database
from openapi_server.apikeys import create_key
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.principal import SCOPES
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
def serving(url: URL, phase3: bool, logs: Path) -> Iterator[int]:
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
        db.dispose()
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        with serving(url, False, logs) as monolith, serving(url, True, logs) as phase3:
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


if __name__ == "__main__":
    main()
