"""The README's "Running it" commands, run as written from the repository root."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "app" / "README.md"


def _root_commands() -> list[str]:
    section = README.read_text().split("## Running it", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`uv run" in line]
    return [re.findall(r"`(uv run [^`]+)`", row)[0] for row in rows]


def test_every_command_is_a_uv_run_of_a_module_that_exists() -> None:
    commands = _root_commands()
    assert len(commands) == 6
    for command in commands:
        if " -m " in command:
            module = command.split(" -m ", 1)[1].split()[0]
            assert importlib.util.find_spec(module) is not None, command
        else:
            assert command.startswith("uv run uvicorn openapi_server.main:app"), command


def test_the_one_off_commands_run_from_the_repository_root(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_", "VIRTUAL_"))
    }
    env["DATA_DIR"] = str(tmp_path)
    for command in _root_commands():
        if "migrate" in command or "reconcile" in command:
            args = ["uv", "run", "--frozen", *command.split()[2:]]
            proc = subprocess.run(
                args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
            )
            assert proc.returncode == 0, (command, proc.stderr)
    assert (tmp_path / "coldreach.db").exists()
