"""API throughput and latency on PostgreSQL with one uvicorn process.

Starts `uvicorn openapi_server.main:app` (the image's command) against a throwaway
database, then drives POST /clients and GET /clients?limit=50 from 16 keep-alive
connections on the same machine (the load generator shares the 2 cores). Every
request carries an API key (`Authorization: Bearer crk_...`) and passes the
per-workspace rate limit, whose ceiling is raised so that it counts but never refuses.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from app_common import app_env, free_port, percentile, throwaway_database
from openapi_server.apikeys import create_key
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.principal import SCOPES

CONNECTIONS = 16
REQUESTS = 3000
WARMUP = 300


def drive(
    port: int,
    make_request,
    total: int,
    headers: dict[str, str],
    connections: int = CONNECTIONS,
    ok=lambda status: status < 400,
) -> tuple[float, list[float], int]:
    """`total` requests over `connections` keep-alive connections: wall time, each
    request's latency, and how many answers `ok` refused."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def run() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local: list[float] = []
        bad = 0
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body = make_request(i)
            t0 = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            local.append(time.perf_counter() - t0)
            bad += not ok(resp.status)
        conn.close()
        with lock:
            latencies.extend(local)
            errors += bad

    threads = [threading.Thread(target=run) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, errors


def report(name: str, elapsed: float, latencies: list[float], errors: int) -> dict:
    row = {
        "endpoint": name,
        "requests": len(latencies),
        "errors": errors,
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }
    print(json.dumps(row))
    return row


def main() -> None:
    with throwaway_database() as url:
        db = Database(Settings(database_url=url, auto_migrate=False))
        with db.session() as s:
            key = create_key(s, "bench", frozenset(SCOPES))
        db.dispose()
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        port = free_port()
        env = app_env(
            url,
            PORT=str(port),
            QUEUE_BACKEND="inline",
            DB_POOL_SIZE="10",
            RATE_LIMIT_PER_MINUTE="100000000",
        )
        server = subprocess.Popen(
            ["uvicorn", "openapi_server.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

            def post(i: int):
                body = json.dumps({"name": f"Lead {i}", "email": f"lead{i}@example.com"})
                return "POST", "/clients", body

            def get(i: int):
                return "GET", f"/clients?limit=50&offset={(i * 50) % 3000}", None

            drive(port, lambda i: post(10**6 + i), WARMUP, headers)
            rows = [report("POST /clients", *drive(port, post, REQUESTS, headers))]
            drive(port, get, WARMUP, headers)
            rows.append(report("GET /clients?limit=50", *drive(port, get, REQUESTS, headers)))
            print(f"connections={CONNECTIONS} requests={REQUESTS} (after {WARMUP} warm-up)")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
