"""`coldreach plan --json`: the documented contract, followed end to end."""

from __future__ import annotations

import json

import pytest

from coldreach.cli import main


def _plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["plan", "--stack", "dev", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_contract_keys_and_resource_shape(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _plan_json(capsys)
    assert doc["stack"] == "dev" and doc["phase"] == 1
    assert {"resources", "outputs"} <= set(doc)
    urns = {r["urn"] for r in doc["resources"]}
    for r in doc["resources"]:
        assert set(r) == {"urn", "type", "name", "id", "parent", "protect", "dependsOn", "inputs"}
        assert set(r["dependsOn"]) <= urns, "every dependency is a resource of the plan"
        assert (
            r["parent"] is None
            or r["parent"] in urns
            or r["parent"].endswith("pulumi:pulumi:Stack::cold-reach-dev")
        )
    ids = [r["id"] for r in doc["resources"] if r["id"] is not None]
    assert len(ids) == len(set(ids))
    assert doc["outputs"]["url"].startswith("http://")


def test_graph_can_be_followed_from_the_database_to_the_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _plan_json(capsys)
    by_id = {r["id"]: r for r in doc["resources"] if r["id"]}
    db = next(r for r in doc["resources"] if r["type"] == "aws:rds/instance:Instance")
    [sg_id] = db["inputs"]["vpcSecurityGroupIds"]
    assert by_id[sg_id]["type"] == "aws:ec2/securityGroup:SecurityGroup"
    rules = [
        r
        for r in doc["resources"]
        if r["type"].endswith("SecurityGroupIngressRule")
        and r["inputs"]["securityGroupId"] == sg_id
    ]
    [rule] = rules
    source = rule["inputs"]["referencedSecurityGroupId"]
    service = next(r for r in doc["resources"] if r["type"] == "aws:ecs/service:Service")
    assert service["inputs"]["networkConfiguration"]["securityGroups"] == [source]


def test_secrets_are_masked_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _plan_json(capsys)
    db = next(r for r in doc["resources"] if r["type"] == "aws:rds/instance:Instance")
    assert db["inputs"]["password"] == "[secret]"
    versions = [r for r in doc["resources"] if r["type"].endswith("secretVersion:SecretVersion")]
    assert versions and all(v["inputs"]["secretString"] == "[secret]" for v in versions)


def test_phase_override_is_applied(capsys: pytest.CaptureFixture[str]) -> None:
    # dev is configured at phase 1; --phase 2 must evaluate phase 2, worker included.
    assert main(["plan", "--stack", "dev", "--phase", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["phase"] == 2 and doc["outputs"]["worker_service_name"]
    assert any(r["name"] == "worker-service" for r in doc["resources"])


def test_human_output_groups_by_component(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    for component in (
        "coldreach:network:Network",
        "coldreach:database:Database",
        "coldreach:service:FargateService",
    ):
        assert component in out
    assert "Resources by type" in out and "protected" in out
