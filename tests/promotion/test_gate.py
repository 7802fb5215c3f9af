"""`coldreach gate` on recorded `pulumi preview --json` documents (tests/promotion/previews)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldreach import gate, promote
from coldreach.cli import main

PREVIEWS = Path(__file__).with_name("previews")


def _load(name: str) -> dict:
    return json.loads((PREVIEWS / name).read_text())


def test_a_safe_promotion_passes_even_with_stateless_replacements() -> None:
    # Task definitions are replaced on every image or env change; that loses nothing.
    assert gate.check(_load("safe-promotion.json")) == []


def test_a_replaced_database_fails_with_its_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    [finding] = gate.check(_load("replaces-database.json"))
    assert finding.type == "aws:rds/instance:Instance"
    assert finding.reasons == ("engine", "storageEncrypted")
    assert main(["gate", str(PREVIEWS / "replaces-database.json")]) == 1
    out = capsys.readouterr().out
    assert "db-instance" in out and "engine, storageEncrypted" in out


def test_replacement_steps_and_deletes_of_data_fail() -> None:
    findings = gate.check(_load("deletes-cache-with-replacement-steps.json"))
    assert [(f.op, f.type) for f in findings] == [
        ("create-replacement", "aws:elasticache/replicationGroup:ReplicationGroup"),
        ("delete-replaced", "aws:elasticache/replicationGroup:ReplicationGroup"),
        ("delete", "aws:s3/bucket:Bucket"),
    ]
    assert findings[0].reasons == ("subnetGroupName",)


def test_passing_preview_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", str(PREVIEWS / "safe-promotion.json")]) == 0
    assert "gate passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "Expecting value"), ('{"changeSummary": {}}', "no 'steps' list")],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "preview.json"
    path.write_text(content)
    assert main(["gate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert main(["gate", str(tmp_path / "missing.json")]) == 2


def test_type_of_follows_the_parent_chain() -> None:
    chain = "a:b:C$coldreach:cache:Cache$aws:elasticache/replicationGroup:ReplicationGroup"
    urn = f"urn:pulumi:s::p::{chain}::x"
    assert gate.type_of(urn) == "aws:elasticache/replicationGroup:ReplicationGroup"


def _retire_preview(op: str) -> dict:
    chain = "cold-reach:data:Cache$aws:elasticache/replicationGroup:ReplicationGroup"
    return {
        "steps": [
            {"op": op, "urn": f"urn:pulumi:staging::cold-reach::{chain}::cache-redis"},
            {"op": "delete", "urn": "urn:pulumi:staging::cold-reach::aws:s3/bucket:Bucket::assets"},
        ]
    }


def test_the_deploy_gate_lets_only_a_done_retire_stage_delete_what_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "Pulumi.yaml").write_text((repo / "Pulumi.yaml").read_text())
    stack_file = tmp_path / "Pulumi.staging.yaml"
    stack_file.write_text((repo / "Pulumi.staging.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    preview = tmp_path / "preview.json"
    preview.write_text(json.dumps(_retire_preview("delete")))

    # Phase 2 (and any stage before the retire one): Redis is data, its deletion fails.
    assert main(["gate", str(preview), "--stack", "staging"]) == 1
    assert "cache-redis" in capsys.readouterr().out

    for key, value in (("phase", "3"), ("eksTrafficPercent", "100"), ("retireEcs", "true")):
        promote.set_config(stack_file, key, value)
    assert main(["gate", str(preview), "--stack", "staging"]) == 1
    out = capsys.readouterr().out
    # The bucket is still refused; Redis is retired by name.
    assert "aws:s3/bucket:Bucket::assets" in out and "::cache-redis" not in out
    assert "Retired on purpose by the stack file: cache-auth-token-secret" in out
    assert gate.check(_retire_preview("delete"), frozenset({"cache-redis"})) == [
        gate.Finding(
            "urn:pulumi:staging::cold-reach::aws:s3/bucket:Bucket::assets",
            "aws:s3/bucket:Bucket",
            "delete",
            (),
        )
    ]
    # A replacement is never a retirement.
    replaced = gate.check(_retire_preview("replace"), frozenset({"cache-redis"}))
    assert [f.op for f in replaced] == ["replace", "delete"]
    # Without --stack, nothing is retired.
    assert main(["gate", str(preview)]) == 1
    assert "::cache-redis" in capsys.readouterr().out
