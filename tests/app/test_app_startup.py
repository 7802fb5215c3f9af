"""With the database down at start and AUTO_MIGRATE=1, every process retries a bounded
number of times with one clear line per attempt, then exits non-zero without a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "uvicorn", "openapi_server.main:app", "--port", "0"],
        ["-m", "openapi_server.worker"],
        ["-m", "openapi_server.migrate"],
    ],
    ids=["api", "worker", "migrate"],
)
def test_database_down_at_start_is_retried_then_a_clean_exit(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"postgresql://app@127.0.0.1:{_closed_port()}/coldreach",
        "AUTO_MIGRATE": "1",
        "QUEUE_BACKEND": "celery",
        "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
        "DB_CONNECT_ATTEMPTS": "3",
        "DB_CONNECT_BACKOFF_S": "0.1",
    }
    proc = subprocess.run(
        [sys.executable, *command], env=env, capture_output=True, text=True, timeout=120
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    retries = [line for line in output.splitlines() if "database unreachable (attempt" in line]
    assert len(retries) == 2, output
    assert "attempt 1/3" in retries[0] and "Connection refused" in retries[0]
    assert "database unreachable after 3 attempts" in output, output
