"""What `pulumi up` installs: the program's dependencies, never the app or the emulator.

Pulumi's uv toolchain (pulumi/pulumi sdk/python/toolchain/uv.go) installs
dependencies with a bare `uv sync`, run in the project directory with
UV_PROJECT_ENVIRONMENT set to the runtime's virtualenv: the root project and
its dependencies, plus the default dependency groups, and no other workspace
member. `uv export` with the same (absent) flags resolves that set from the lock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = {"pulumi", "pulumi-aws", "pulumi-random", "pulumi-docker-build", "pulumi-policy",
           "pulumi-kubernetes",
           # Packaged into the master password's rotation function (components/rotation.py).
           "pg8000"}  # fmt: skip
NEVER_IN_THE_PROGRAM = {
    "fastapi",
    "celery",
    "sqlalchemy",
    "moto",
    "uvicorn",
    "alembic",
    "psycopg",
    "cold-reach-app",
    "rich",
    "boto3",
    "pytest",
}


def _uv() -> list[str]:
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _exported(*flags: str) -> set[str]:
    """The distributions `uv sync` with `flags` would install, from uv.lock."""
    command = [*_uv(), "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate"]
    done = subprocess.run([*command, *flags], cwd=ROOT, capture_output=True, text=True, check=True)
    names = set()
    for line in done.stdout.splitlines():
        if line.startswith("-e "):
            names.add(line[3:].strip())
        elif line and not line.startswith("#"):
            names.add(re.split(r"[=<>;\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_pulumi_runs_the_program_with_uv_in_its_own_virtualenv() -> None:
    options = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]
    assert options["toolchain"] == "uv"
    # Its `uv sync` is exact: sharing the development .venv would strip the tooling.
    assert options["virtualenv"] not in (".venv", "./.venv")
    # The type checker Pulumi runs must be in that environment.
    assert options["typechecker"] == "pyright"


def test_the_root_project_depends_on_what_the_program_needs_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[=<>\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert names == PROGRAM


def test_pulumi_up_installs_no_app_and_no_emulator() -> None:
    installed = _exported()  # a bare `uv sync`, as the toolchain runs it
    assert installed >= PROGRAM
    assert "pyright" in installed
    assert installed & NEVER_IN_THE_PROGRAM == set()


def test_make_setup_installs_the_tooling_and_the_app() -> None:
    installed = _exported("--all-packages", "--all-groups")  # what `make setup` syncs
    assert {"fastapi", "celery", "sqlalchemy", "moto", "rich", "boto3", "pytest"} <= installed
    assert "import-linter" in installed
