"""`coldreach promote`: one phase at a time, stage by stage, refusing data loss, writing only
the stage's lines."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

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


def at_phase_2(evaluate_kwargs: dict[str, Any]) -> bool:
    return (evaluate_kwargs.get("overrides") or {}).get("cold-reach:phase") == "2"


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
    # The task definition is replaced (a new revision); nothing stateful is.
    assert "34 to create, 3 to update, 1 to replace, 0 to delete" in out
    assert "$59.81 -> $139.39 (+$79.58)" in out
    stack = '--stack "$PULUMI_ORG/cold-reach/dev"'
    for command in (
        f"pulumi stack output image {stack}",
        "git commit -m 'Promote dev to phase 2' Pulumi.dev.yaml",
        "aws rds create-db-snapshot --region us-east-1",
        'aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier "$SNAP"',
        "uv run coldreach verify --stack $PULUMI_ORG/cold-reach/dev",
    ):
        assert command in out, command
    # Applied by the deploy workflow after review, never by a laptop `pulumi up`.
    steps = [line.split(". ", 1)[-1] for line in out.split("Now, in order:")[1].splitlines()]
    assert not [line for line in steps if line.startswith(("pulumi up", "pulumi preview"))]
    # The snapshot comes after the review, right before the merge that applies it.
    order = [
        next(i for i, line in enumerate(steps) if key in line)
        for key in ("git commit", "create-db-snapshot", "db-snapshot-available", "merge")
    ]
    assert order == sorted(order)


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
        if at_phase_2(kw):
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
        if at_phase_2(kw):
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


def test_stack_is_named_as_every_other_command_names_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["promote", "--stack", "dev", "--to", "2", "--dry-run"]) == 0
    assert "Dry run" in capsys.readouterr().out
    assert main(["promote", "--to", "2"]) == 2
    assert "name one stack: --stack STACK" in capsys.readouterr().err
    assert main(["promote", "dev", "--stack", "staging", "--to", "2"]) == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("two", "cold-reach:phase = 'two' is not allowed: a whole number"),
        ("0", "cold-reach:phase = 0 is not allowed: a whole number >= 1 and <= 3"),
    ],
)
def test_a_bad_phase_is_the_same_clean_error_as_plan_gives(
    project: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("cold-reach:phase: 1", f"cold-reach:phase: {value}"))
    assert main(["plan", "--stack", "dev"]) == 2
    from_plan = capsys.readouterr().err
    for to in ("1", "2"):
        assert main(["promote", "--stack", "dev", "--to", to]) == 2
        err = capsys.readouterr().err
        assert message in err and message in from_plan
        assert "Traceback" not in err and "--to" not in err


def test_an_unknown_price_is_a_warning_and_the_delta_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  cold-reach:dbInstanceClass: db.t3.medum\n")
    assert main(["promote", "--stack", "dev", "--to", "2", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "(incomplete: see the warning)" in captured.out
    assert "no price for rds.postgres.db.t3.medum.single_az_hour" in captured.err
    assert main(["cost", "--stack", "dev"]) == 0
    captured = capsys.readouterr()
    assert "warning: no price for db-instance (rds.postgres.db.t3.medum.single_az_hour)" in (
        " ".join(captured.err.split())
    )
    assert "lower bound" in captured.err


def test_the_route_is_data_a_later_stage_fits_without_code(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two stages: the first sets the phase, the second a key and has a precondition.
    Where the stack stands comes from its config; a failed check refuses, naming it."""

    def never_ready(context: promote.StageContext) -> str | None:
        return f"{context.config.stack}: queue not drained (stage check)"

    first = promote.ROUTES[2].stages[0]
    second = promote.Stage(
        name="bigger database",
        does="db.t4g.small",
        sets={"dbInstanceClass": "db.t4g.small"},
        verify="verify",
        rollback="set it back",
        checks=(never_ready,),
    )
    route = promote.Route(1, 2, (first, second), "docs/promotion.md")
    monkeypatch.setitem(promote.ROUTES, 2, route)

    assert main(["promote", "--stack", "dev", "--to", "2"]) == 0
    out = capsys.readouterr().out
    assert "stage 'phase 2'" in out and "cold-reach:phase: 2." in out

    before = (project / "Pulumi.dev.yaml").read_text()
    assert main(["promote", "--stack", "dev", "--to", "2"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "stage 'bigger database'" in out
    # The instance class changes in place, on the primary and the replica.
    assert "2 to update, 0 to replace, 0 to delete" in out
    assert "dev: queue not drained (stage check)" in out
    assert (project / "Pulumi.dev.yaml").read_text() == before

    ready = dataclasses.replace(second, checks=())
    monkeypatch.setitem(promote.ROUTES, 2, promote.Route(1, 2, (first, ready), route.runbook))
    assert main(["promote", "--stack", "dev", "--to", "2"]) == 0
    assert "cold-reach:dbInstanceClass: db.t4g.small" in (project / "Pulumi.dev.yaml").read_text()
    assert main(["promote", "--stack", "dev", "--to", "2"]) == 0
    assert "already at phase 2" in capsys.readouterr().out
