"""The pack over the real program, offline: every stack is clean, broken ones are caught."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from policy_helpers import CERT
from rich.console import Console

from coldreach import plan_document, policy_eval
from coldreach.cli import plan
from coldreach.runtime import Deployment
from policies import catalog, stack_config
from policies.tokens import INGRESS, TASK_DEFINITION

Program = Callable[..., Deployment]


def mandatory(violations: list[policy_eval.Violation]) -> set[tuple[str, str | None]]:
    return {(v.rule, v.resource) for v in violations if v.mandatory}


@pytest.mark.parametrize(
    ("stack", "phase", "overrides"),
    [
        pytest.param("dev", None, {}, id="dev"),
        pytest.param("dev", 2, {}, id="dev-phase-2"),
        pytest.param("staging", None, {}, id="staging"),
        pytest.param("prod", None, {"certificateArn": CERT}, id="prod-with-its-certificate"),
    ],
)
def test_no_mandatory_violations(
    program: Program, stack: str, phase: int | None, overrides: dict[str, str]
) -> None:
    violations = policy_eval.evaluate(program(stack, phase, **overrides))
    assert [v for v in violations if v.mandatory] == []


def test_findings_come_in_the_same_order_whatever_order_resources_were_captured(
    program: Program,
) -> None:
    """The program registers from several threads; `plan --json` must not change with that."""
    dev = program("dev")
    reversed_capture = Deployment(
        stack=dev.stack,
        project=dev.project,
        resources=list(reversed(dev.resources)),
        outputs=dev.outputs,
        messages=dev.messages,
    )
    assert policy_eval.evaluate(reversed_capture) == policy_eval.evaluate(dev)


def test_prod_without_a_certificate_is_blocked_by_https_only(program: Program) -> None:
    """Pulumi.prod.yaml asks for certificateArn before the first deploy; the pack enforces it."""
    assert mandatory(policy_eval.evaluate(program("prod"))) == {("A1", "edge-http")}


def test_the_same_findings_are_advisory_in_dev_and_mandatory_in_prod(program: Program) -> None:
    staging = program("staging")
    as_staging = policy_eval.evaluate(staging)
    as_prod = policy_eval.evaluate(staging, config=stack_config.load("prod"))
    per_stack = {("A1", "edge-http"), ("A3c", "edge-alb"), ("A5", "edge-alb"),
                 ("D9", "db-instance"), ("C4", "cache-redis")}  # fmt: skip
    assert per_stack <= {(v.rule, v.resource) for v in as_staging if not v.mandatory}
    # prod also raises the thresholds: backups >= 14 days, logs kept >= 365 days.
    thresholds = {("D3a", "db-instance"), ("D3a", "db-replica"), ("L1", "web-logs"),
                  ("L1", "worker-logs"), ("L1", "net-flow-logs"),
                  # the database's one-off tasks (cold-reach:dbIamAuth roles)
                  ("L1", "bootstrap-logs"), ("L1", "migrate-logs")}  # fmt: skip
    assert mandatory(as_prod) == per_stack | thresholds


def test_dev_phase_1_public_task_ip_is_advisory_only_in_dev(program: Program) -> None:
    """ADR 0001: phase 1 gives the web task a public IP instead of paying for a NAT."""
    dev = program("dev")
    findings = {(v.rule, v.enforcement) for v in policy_eval.evaluate(dev)}
    assert ("E6", "advisory") in findings
    assert ("E6", "web-service") in mandatory(
        policy_eval.evaluate(dev, config=stack_config.load("prod"))
    )


def test_an_ephemeral_stack_is_unprotected(program: Program) -> None:
    """`cold-reach:ephemeral=true` drops protect and deletion protection: the pack says so."""
    found = mandatory(policy_eval.evaluate(program("staging", ephemeral="true"), stack="staging"))
    stateful = {"db-instance", "db-replica", "cache-redis", "registry-repo", "db-credentials",
                "cache-url", "cache-auth-token-secret", "unsubscribe-key-secret",
                "edge-access-logs"}  # fmt: skip
    assert found == {("X1", name) for name in stateful} | {
        ("D3b", "db-instance"),
        ("D3b", "db-replica"),
    }


def _by_name(d: Deployment, name: str, type_: str) -> Any:
    return next(r for r in d.of_type(type_) if r.name == name)


def _containers(d: Deployment, name: str) -> list[dict[str, Any]]:
    return json.loads(_by_name(d, name, TASK_DEFINITION).get("containerDefinitions"))


def _set_containers(d: Deployment, name: str, containers: list[dict[str, Any]]) -> None:
    _by_name(d, name, TASK_DEFINITION).inputs["containerDefinitions"] = json.dumps(containers)


def _db_from_cidr(d: Deployment) -> None:
    rule = _by_name(d, "db-sg-in-web-sg", INGRESS)
    del rule.inputs["referencedSecurityGroupId"]
    rule.inputs["cidrIpv4"] = "10.41.0.0/16"


def _secret_in_env(d: Deployment) -> None:
    containers = _containers(d, "web-task")
    containers[0]["environment"].append(
        {"name": "DATABASE_URL", "value": "postgresql://coldreach_admin:pw0rd@db:5432/coldreach"}
    )
    _set_containers(d, "web-task", containers)


def _public_task(d: Deployment) -> None:
    svc = _by_name(d, "worker-service", "aws:ecs/service:Service")
    svc.inputs["networkConfiguration"]["assignPublicIp"] = True


def _plaintext_redis(d: Deployment) -> None:
    redis = _by_name(d, "cache-redis", "aws:elasticache/replicationGroup:ReplicationGroup")
    redis.inputs["transitEncryptionEnabled"] = False


def _cache_open_to_world(d: Deployment) -> None:
    rule = copy.deepcopy(_by_name(d, "cache-sg-in-web-sg", INGRESS))
    rule.urn += "-world"
    rule.name = "cache-sg-in-world"
    rule.id = "sgr-world"
    del rule.inputs["referencedSecurityGroupId"]
    rule.inputs["cidrIpv4"] = "0.0.0.0/0"
    d.resources.append(rule)


def _web_from_cidr(d: Deployment) -> None:
    rule = _by_name(d, "web-sg-in-edge-sg", INGRESS)
    del rule.inputs["referencedSecurityGroupId"]
    rule.inputs["cidrIpv4"] = "10.41.0.0/16"


def _unprotected_db(d: Deployment) -> None:
    _by_name(d, "db-replica", "aws:rds/instance:Instance").protect = False


def _public_db(d: Deployment) -> None:
    _by_name(d, "db-instance", "aws:rds/instance:Instance").inputs["publiclyAccessible"] = True


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(_db_from_cidr, {("N6", "db-sg-in-web-sg")}, id="db-from-cidr"),
        pytest.param(_secret_in_env, {("E5", "web-task")}, id="secret-in-environment"),
        pytest.param(_public_task, {("E6", "worker-service")}, id="public-task-ip"),
        pytest.param(_plaintext_redis, {("C2", "cache-redis")}, id="redis-without-tls"),
        pytest.param(
            _cache_open_to_world,
            {
                ("N5", "cache-sg-in-world"),
                ("N5b", "cache-sg-in-world"),
                ("N6", "cache-sg-in-world"),
            },
            id="cache-open-to-world",
        ),
        pytest.param(_web_from_cidr, {("N9", "web-sg-in-edge-sg")}, id="web-from-cidr"),
        pytest.param(_unprotected_db, {("X1", "db-replica")}, id="replica-unprotected"),
        pytest.param(_public_db, {("D2", "db-instance")}, id="public-db"),
    ],
)
def test_a_broken_deployment_is_caught_offline(
    program: Program, change: Callable[[Deployment], None], expected: set[tuple[str, str]]
) -> None:
    broken = copy.deepcopy(program("staging"))
    change(broken)
    assert mandatory(policy_eval.evaluate(broken)) == expected


def test_references_are_rebuilt_as_property_dependencies(program: Program) -> None:
    resources = {
        (r.resource_type, r.name): r for r in policy_eval.policy_resources(program("staging"))
    }
    task = resources[("aws:ecs/taskDefinition:TaskDefinition", "web-task")]
    deps = {k: [d.name for d in v] for k, v in task.property_dependencies.items()}
    assert deps["executionRoleArn"] == ["web-execution"]
    assert deps["taskRoleArn"] == ["web-task"]
    rule = resources[(INGRESS, "db-sg-in-worker-sg")]
    assert [d.name for d in rule.property_dependencies["securityGroupId"]] == ["db-sg"]
    assert [d.name for d in rule.property_dependencies["referencedSecurityGroupId"]] == [
        "worker-sg"
    ]
    replica = resources[("aws:rds/instance:Instance", "db-replica")]
    assert [d.name for d in replica.property_dependencies["replicateSourceDb"]] == ["db-instance"]
    assert replica.opts.protect is True


def test_plan_json_carries_the_findings(program: Program) -> None:
    doc = json.loads(json.dumps(plan_document.build(program("staging"))))
    policy = doc["policy"]
    assert policy["mandatory"] == 0
    assert policy["advisory"] == len(policy["violations"]) > 0
    assert policy["rules"] == len(catalog.rules())
    for v in policy["violations"]:
        assert {"policy", "urn", "message", "enforcement"} <= set(v)
        assert v["enforcement"] in ("mandatory", "advisory")
        assert v["urn"].startswith("urn:pulumi:staging::cold-reach::")


def test_plan_renders_the_findings(program: Program) -> None:
    console = Console(record=True, width=160)
    plan.render_policy(program("prod"), console)
    text = console.export_text()
    assert "1 mandatory" in text
    assert "edge-http" in text
