"""The protos: generated code committed as `make proto` writes it, and buf STANDARD lint."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "app" / "proto"
GENERATED = ROOT / "app" / "src" / "openapi_server" / "rpc" / "gen"


def _files(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    subprocess.run(
        [sys.executable, str(PROTO / "generate.py"), "--out", str(out)], check=True, timeout=120
    )
    fresh, committed = _files(out), _files(GENERATED)
    assert fresh == committed, "run `make proto` and commit app/src/openapi_server/rpc/gen"
    differing = [f for f in sorted(fresh) if not filecmp.cmp(out / f, GENERATED / f, shallow=False)]
    assert not differing, f"stale generated code (run `make proto`): {differing}"


def test_generated_imports_name_the_app_package_not_the_tooling() -> None:
    # protoc writes `from coldreach.clients.v1 import ...`: the repository's `coldreach`
    # package is the Pulumi tooling, so generate.py rewrites those imports.
    for path in GENERATED.rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.startswith(("from coldreach.", "import coldreach.")), path


def _buf_workspace(tmp_path: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (CI installs Node.js)")
    work = tmp_path / "proto"
    shutil.copytree(PROTO, work, ignore=shutil.ignore_patterns("node_modules", "*.py"))
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=work, check=True, timeout=300
    )
    return work


def test_protos_pass_buf_standard_lint_and_the_lint_catches_violations(tmp_path: Path) -> None:
    work = _buf_workspace(tmp_path)
    buf = str(work / "node_modules" / ".bin" / "buf")
    clean = subprocess.run([buf, "lint"], cwd=work, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    # The seed's literal signature breaks STANDARD: the lint must say so.
    seed = work / "coldreach" / "seed" / "v1"
    seed.mkdir(parents=True)
    (seed / "seed.proto").write_text(
        'syntax = "proto3";\npackage coldreach.seed.v1;\n'
        "message ClientId { int64 id = 1; }\nmessage Client { int64 id = 1; }\n"
        "service SeedService { rpc GetClient(ClientId) returns (Client); }\n"
    )
    dirty = subprocess.run([buf, "lint"], cwd=work, capture_output=True, text=True, timeout=120)
    assert dirty.returncode != 0
    assert "GetClientRequest" in dirty.stdout + dirty.stderr
