"""`coldreach promote`: one phase at a time, refusing data loss, writing only the phase line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import infra.layers.data
from coldreach import promote
from coldreach.cli import main
from components.database import Database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's stack files in a scratch directory, as the working directory."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dev_promotes_safely_and_only_the_phase_line_changes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (project / "Pulumi.dev.yaml").read_text()
    assert main(["promote", "dev", "--to", "2"]) == 0
    out = capsys.readouterr().out
    after = (project / "Pulumi.dev.yaml").read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [("  cold-reach:phase: 1", "  cold-reach:phase: 2")]
    assert "0 to replace, 0 to delete" in out
    assert "$59.81 -> $139.39 (+$79.58)" in out
    for command in (
        "pulumi preview --diff --stack dev",
        "pulumi up --stack dev",
        "coldreach verify --stack dev",
        "create-db-snapshot",
    ):
        assert command in out


def test_dry_run_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (project / "Pulumi.dev.yaml").read_bytes()
    assert main(["promote", "dev", "--to", "2", "--dry-run"]) == 0
    assert (project / "Pulumi.dev.yaml").read_bytes() == before
    assert "Dry run" in capsys.readouterr().out
    assert sorted(p.name for p in project.iterdir()) == [
        "Pulumi.dev.yaml",
        "Pulumi.staging.yaml",
        "Pulumi.yaml",
    ]


def test_skipping_or_going_down_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["promote", "dev", "--to", "3"]) == 2
    assert "one phase at a time (--to 2)" in capsys.readouterr().err
    assert main(["promote", "staging", "--to", "1"]) == 2
    assert main(["promote", "staging", "--to", "2"]) == 0
    assert "already at phase 2" in capsys.readouterr().out


def test_a_renamed_database_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = promote.evaluate_stack

    def renamed_in_phase2(stack: str, phase: int | None = None, **kw):  # type: ignore[no-untyped-def]
        if phase == 2:
            with monkeypatch.context() as m:
                m.setattr(
                    infra.layers.data,
                    "Database",
                    lambda name, args, opts=None: Database("database", args, opts),
                )
                return real(stack, phase, **kw)
        return real(stack, phase, **kw)

    monkeypatch.setattr(promote, "evaluate_stack", renamed_in_phase2)
    before = (project / "Pulumi.dev.yaml").read_text()
    assert main(["promote", "dev", "--to", "2"]) == 1
    out = capsys.readouterr().out
    assert "Refused" in out
    assert "db-instance (aws:rds/instance:Instance) would be deleted" in out
    assert "db-credentials (aws:secretsmanager/secret:Secret) would be deleted" in out
    assert (project / "Pulumi.dev.yaml").read_text() == before


def test_a_changed_engine_is_refused_naming_the_input(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import components.database

    real = promote.evaluate_stack

    def other_engine_in_phase2(stack: str, phase: int | None = None, **kw):  # type: ignore[no-untyped-def]
        if phase == 2:
            with monkeypatch.context() as m:
                m.setattr(components.database, "ENGINE", "aurora-postgresql")
                return real(stack, phase, **kw)
        return real(stack, phase, **kw)

    monkeypatch.setattr(promote, "evaluate_stack", other_engine_in_phase2)
    assert main(["promote", "dev", "--to", "2", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "db-instance (aws:rds/instance:Instance) would be replaced: engine changed" in out


def test_set_phase_keeps_comments_and_adds_a_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("# keep me\nconfig:\n  aws:region: us-east-1  # and me\n")
    promote.set_phase(path, 2)
    assert (
        path.read_text()
        == "# keep me\nconfig:\n  cold-reach:phase: 2\n  aws:region: us-east-1  # and me\n"
    )
    promote.set_phase(path, 3)
    assert (
        "cold-reach:phase: 3" in path.read_text() and "cold-reach:phase: 2" not in path.read_text()
    )
