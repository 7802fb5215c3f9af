"""What the image and the ECS tasks rely on, tested without a container engine.

The Dockerfile cannot be built on this machine, so its contract is checked by
parsing it, and the commands it runs are run here the same way.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from openapi_server.db import Base
from packaging.requirements import Requirement
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
BIN = Path(sys.executable).parent


def dockerfile() -> list[tuple[str, str]]:
    text = (APP / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_on_a_slim_base_chosen_by_build_arg() -> None:
    instructions = dockerfile()
    assert instructions[0][0] == "ARG"
    name, default = instructions[0][1].split("=", 1)
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", default), default
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) >= 2
    assert all(f.startswith("${" + name + "}") for f in froms)
    assert "--from=build" in " ".join(rest for w, rest in instructions if w == "COPY")


def _final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (w, _) in enumerate(instructions) if w == "FROM")
    return instructions[last_from:]


def test_runtime_stage_is_non_root_readonly_friendly_with_healthcheck() -> None:
    final = _final_stage()
    users = [rest for w, rest in final if w == "USER"]
    assert users == ["10001:10001"]
    env = " ".join(rest for w, rest in final if w == "ENV")
    assert "DATA_DIR=/tmp/coldreach" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PORT=8000" in env and "HOME=/tmp" in env
    health = [rest for w, rest in final if w == "HEALTHCHECK"]
    assert len(health) == 1
    cmd = json.loads(health[0].split("CMD", 1)[1])
    assert cmd[:3] == ["python", "-m", "openapi_server.healthcheck"]
    assert importlib.util.find_spec(cmd[2]) is not None


def test_default_command_runs_the_api_with_uvicorn_on_port() -> None:
    cmd = json.loads([rest for w, rest in _final_stage() if w == "CMD"][-1])
    assert cmd[:2] == ["sh", "-c"]
    words = shlex.split(cmd[2])
    assert words[:2] == ["exec", "uvicorn"]
    assert "openapi_server.main:app" in words
    assert words[words.index("--host") + 1] == "0.0.0.0"
    assert words[words.index("--port") + 1] == "${PORT:-8000}"
    module = words[2].split(":")[0]
    assert importlib.util.find_spec(module) is not None


def test_files_the_dockerfile_copies_exist() -> None:
    for word, rest in dockerfile():
        if word == "COPY" and "--from" not in rest:
            for src in rest.split()[:-1]:
                assert (APP / src).exists(), src


def test_requirements_pin_what_the_lock_installs() -> None:
    """requirements.txt (for the image) pins the same versions as uv.lock (for the venv).

    Regenerate with:
    uv export --package cold-reach-app --no-dev --frozen --no-emit-workspace --no-header \
      -o app/requirements.txt
    """
    pins: dict[str, str] = {}
    text = (APP / "requirements.txt").read_text()
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        req = Requirement(line.split(" --hash")[0].strip())
        pins[req.name.lower()] = str(req.specifier).removeprefix("==")
        if req.marker is None or req.marker.evaluate():
            assert importlib.metadata.version(req.name) == pins[req.name.lower()], req.name
    assert len(pins) > 20
    assert "--hash=sha256:" in text
    for requirement in importlib.metadata.requires("cold-reach-app") or []:
        name = re.split(r"[\[<>=; ]", requirement, maxsplit=1)[0].lower()
        assert name in pins, name


def test_compose_has_web_worker_redis_postgres_running_as_on_ecs() -> None:
    compose = yaml.safe_load((APP / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "redis", "postgres"} <= set(services)
    assert services["worker"]["command"] == ["python", "-m", "openapi_server.worker"]
    assert services["migrate"]["command"] == ["python", "-m", "openapi_server.migrate"]
    for name in ("web", "worker", "migrate"):
        assert services[name]["user"] == "10001:10001"
        assert services[name]["read_only"] is True and services[name]["tmpfs"] == ["/tmp"]
    assert services["worker"]["environment"]["QUEUE_BACKEND"] == "celery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {"PATH": f"{BIN}:{os.environ['PATH']}", "LANG": "C.UTF-8"}
    return {**keep, **extra}


def test_the_seed_start_command_serves_health_and_readiness(tmp_path: Path) -> None:
    port = _free_port()
    env = _clean_env(PORT=str(port), DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        ["sh", "-c", "uvicorn openapi_server.main:app --host 0.0.0.0 --port $PORT"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # `sh -c` without exec: stop the whole group, not just sh
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            assert json.loads(r.read()) == {"status": "ready"}
        assert (tmp_path / "data" / "coldreach.db").exists()  # embedded default, migrated
        assert (
            subprocess.run(
                [sys.executable, "-m", "openapi_server.healthcheck"], env=env, timeout=30
            ).returncode
            == 0
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # uvicorn itself has gone too
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("uvicorn did not stop on SIGTERM")


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from openapi_server.config import Settings
    from openapi_server.main import create_app

    settings = Settings.from_env(
        {
            "DATABASE_URL": f"postgresql://x:y@127.0.0.1:{_free_port()}/none",
            "DATA_DIR": str(tmp_path),
        }
    )
    with TestClient(create_app(settings)) as api:
        assert api.get("/healthz").status_code == 200
        r = api.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "database unavailable"
        # A well-formed key: checking it needs the database, which is down.
        key = "crk_0123456789ab_" + "A" * 43
        assert api.get("/clients", headers={"Authorization": f"Bearer {key}"}).status_code == 503


def test_migrate_command_with_ecs_style_variables(tmp_path: Path) -> None:
    from app_helpers import create_database, drop_database

    url: URL = create_database("coldreach_app_test_migrate")
    try:
        env = _clean_env(
            DB_HOST=url.host or "",
            DB_PORT=str(url.port or 5432),
            DB_NAME=url.database or "",
            DB_USER=url.username or "",
            DB_PASSWORD=url.password or "",
            DATA_DIR=str(tmp_path),
        )
        for _ in range(2):  # idempotent
            proc = subprocess.run(
                [sys.executable, "-m", "openapi_server.migrate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert proc.returncode == 0, proc.stderr
        engine = create_engine(url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
        assert {"clients", "tasks", "email_messages", "suppressions", "alembic_version"} <= tables
    finally:
        drop_database(url)


def test_migrations_match_the_models(pg_url: URL) -> None:
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
