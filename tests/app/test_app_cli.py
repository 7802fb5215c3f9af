"""`coldreach-app`: keys, workspaces, and the service commands under one console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_helpers import bearer
from fastapi.testclient import TestClient
from openapi_server.cli import main as cli
from openapi_server.config import Settings
from openapi_server.main import create_app

SCRIPT = Path(sys.executable).parent / "coldreach-app"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path), "LANG": "C.UTF-8"}


def test_create_key_prints_the_key_alone_on_the_last_line_and_it_works(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(SCRIPT), "create-key", "--workspace", "acme", "--scope", "read,write"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.splitlines()[-1]
    assert key.startswith("crk_") and " " not in key
    assert "shown once" in proc.stderr and key[:16] in proc.stderr
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    with TestClient(create_app(settings)) as api:
        r = api.post("/clients", json={"name": "A", "email": "a@example.com"}, headers=bearer(key))
        assert r.status_code == 201
        r = api.post(
            "/email/send",
            json={"client_id": r.json()["id"], "subject": "S", "body": "B"},
            headers=bearer(key),
        )
        assert r.status_code == 403  # no send scope


def _use_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name in ("DATABASE_URL", "DB_HOST", "MAILER"):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env({"DATA_DIR": str(tmp_path)})


def test_keys_are_listed_and_revoked_by_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    settings = _use_sqlite(monkeypatch, tmp_path)
    assert cli(["create-key", "--workspace", "acme"]) == 0
    key = capsys.readouterr().out.splitlines()[-1]
    prefix = key[: len("crk_") + 12]
    assert cli(["create-key", "--workspace", "other", "--scope", "send"]) == 0
    capsys.readouterr()

    assert cli(["list-keys", "--workspace", "acme"]) == 0
    listing = capsys.readouterr().out
    assert prefix in listing and "\tread\tactive\tlast used never" in listing
    assert key not in listing and "other" not in listing

    with TestClient(create_app(settings.with_(api_key_cache_ttl_s=0.0))) as api:
        assert api.get("/clients", headers=bearer(key)).status_code == 200
        assert cli(["revoke-key", prefix]) == 0
        assert capsys.readouterr().out.strip() == "revoked"
        assert api.get("/clients", headers=bearer(key)).status_code == 401
    assert cli(["revoke-key", key]) == 0  # the whole key works too; twice is harmless
    assert cli(["list-keys"]) == 0
    assert "revoked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["create-key", "--workspace", "acme", "--scope", "admin"], 2, "unknown scope(s) admin"),
        (["create-key", "--workspace", "bad name!"], 2, "workspace names are"),
        (["revoke-key", "crk_000000000000"], 1, "no such key"),
        (["revoke-key", "nonsense"], 2, "expected a key"),
        (["set-quota", "--workspace", "acme", "--daily-sends", "-5"], 2, "whole number"),
    ],
)
def test_errors_are_one_line_with_an_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, argv: list[str], status: int, message
) -> None:
    _use_sqlite(monkeypatch, tmp_path)
    assert cli(argv) == status
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_usage_and_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("create-key", "revoke-key", "migrate", "worker", "reconcile", "healthcheck"):
        assert command in out
    with pytest.raises(SystemExit) as exit_:
        cli([])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        cli(["create-key"])  # --workspace is required
    assert exit_.value.code == 2 and "--workspace" in capsys.readouterr().err


def test_a_database_that_is_down_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://x@127.0.0.1:{port}/none")
    assert cli(["create-key", "--workspace", "acme"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: database error:") and "coldreach-app migrate" in err


def test_the_service_commands_run_under_the_same_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from openapi_server import healthcheck

    _use_sqlite(monkeypatch, tmp_path)
    monkeypatch.setenv("AUTO_MIGRATE", "0")
    assert cli(["migrate"]) == 0
    assert (tmp_path / "coldreach.db").exists()
    assert cli(["reconcile"]) == 0
    assert cli(["reconcile", "bogus", "1"]) == 2
    assert cli(["healthcheck", "--worker"]) == 1
    healthcheck.heartbeat_path().touch()
    assert cli(["healthcheck", "--worker"]) == 0
    capsys.readouterr()
    proc = subprocess.run(
        [str(SCRIPT), "worker", "--help"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--concurrency" in proc.stdout
