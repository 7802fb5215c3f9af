"""This app against an earlier revision of it, served and driven at the same time.

    python benchmarks/app_api_ab.py REVISION     # e.g. a commit before a change

On a machine shared with other jobs, runs one after the other drift by more than the
difference being measured. Here both versions run side by side (one uvicorn process
each, on its own throwaway PostgreSQL database), and the same load generator drives
both at once (16 keep-alive connections each), so both see the same interference.
The revision's `app/src` comes from `git archive`; it runs with this virtualenv's
packages. Requests to this version carry an API key holding every scope.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.request
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from app_api import REQUESTS, WARMUP, drive
from app_common import app_env, free_port, percentile, throwaway_database
from openapi_server.apikeys import create_key
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.principal import SCOPES

ROOT = Path(__file__).resolve().parents[1]


def checkout(revision: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", revision, "app/src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "app" / "src"


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["uvicorn", "openapi_server.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
            return server
        except OSError:
            threading.Event().wait(0.1)
    server.terminate()
    raise RuntimeError("the server did not start")


def migrate(url, pythonpath: str | None) -> None:
    code = (
        "import sys; from sqlalchemy.engine import make_url;"
        "from openapi_server.config import Settings; from openapi_server.migrate import upgrade;"
        "upgrade(Settings(database_url=make_url(sys.argv[1]), auto_migrate=False))"
    )
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    subprocess.run(
        [sys.executable, "-c", code, url.render_as_string(hide_password=False)],
        env=env,
        check=True,
        capture_output=True,
    )


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        baseline_src = str(checkout(sys.argv[1], Path(tmp)))
        with throwaway_database() as ours, throwaway_database(migrated=False) as theirs:
            migrate(theirs, baseline_src)
            db = Database(Settings(database_url=ours, auto_migrate=False))
            with db.session() as s:
                key = create_key(s, "bench", frozenset(SCOPES))
            db.dispose()
            plain = {"content-type": "application/json"}
            apps = {
                sys.argv[1]: (theirs, {"PYTHONPATH": baseline_src}, plain),
                "this": (ours, {}, {**plain, "authorization": f"Bearer {key}"}),
            }
            ports: dict[str, int] = {}
            servers = []
            try:
                for name, (url, extra, _) in apps.items():
                    ports[name] = free_port()
                    env = app_env(
                        url,
                        PORT=str(ports[name]),
                        QUEUE_BACKEND="inline",
                        DB_POOL_SIZE="10",
                        RATE_LIMIT_PER_MINUTE="100000000",
                        **extra,
                    )
                    servers.append(serve(env, ports[name]))

                def post(i: int):
                    body = json.dumps({"name": f"Lead {i}", "email": f"lead{i}@example.com"})
                    return "POST", "/clients", body

                def get(i: int):
                    return "GET", f"/clients?limit=50&offset={(i * 50) % 3000}", None

                phases = [
                    (None, lambda i: post(10**6 + i), WARMUP),
                    ("POST /clients", post, REQUESTS),
                    (None, get, WARMUP),
                    ("GET /clients?limit=50", get, REQUESTS),
                ]
                for endpoint, make, total in phases:
                    results: dict[str, tuple[float, list[float], int]] = {}

                    def run(name: str, make=make, total=total, results=results) -> None:
                        results[name] = drive(ports[name], make, total, apps[name][2])

                    threads = [threading.Thread(target=run, args=(name,)) for name in apps]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    if endpoint is None:
                        continue
                    for name, (elapsed, latencies, errors) in results.items():
                        row = {
                            "app": name,
                            "endpoint": endpoint,
                            "req_per_s": round(len(latencies) / elapsed, 1),
                            "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                            "p99_ms": round(percentile(latencies, 99) * 1000, 1),
                            "errors": errors,
                        }
                        print(json.dumps(row))
            finally:
                for server in servers:
                    server.terminate()
                    server.wait(timeout=10)


if __name__ == "__main__":
    main()
