"""`coldreach gate` on recorded `pulumi preview --json` documents (tests/promotion/previews)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldreach import gate
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
