"""Container health probe (no curl in the slim image).

    python -m openapi_server.healthcheck           # API: GET /healthz on $PORT
    python -m openapi_server.healthcheck --worker  # worker: heartbeat file is fresh

Exit status 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

HEARTBEAT_MAX_AGE_S = 90.0


def heartbeat_path() -> Path:
    return Path(os.environ.get("DATA_DIR", "").strip() or "./var") / "worker-heartbeat"


def check_api() -> bool:
    port = os.environ.get("PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as resp:
            return resp.status == 200
    except OSError:
        return False


def check_worker() -> bool:
    try:
        age = time.time() - heartbeat_path().stat().st_mtime
    except OSError:
        return False
    return age < HEARTBEAT_MAX_AGE_S


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    healthy = check_worker() if "--worker" in args else check_api()
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
