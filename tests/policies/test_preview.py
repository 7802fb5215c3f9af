"""A first `pulumi preview`: ids and ARNs of resources not yet created are unknown.

The engine wraps props in proxies that raise `UnknownValueError` when a rule reads such a
value, and then skips that rule for that resource with an advisory note. The rules are
written to need only what a preview knows, so on compliant resources with unknown
references they run and pass. Only rules that must read a whole document holding ARNs
(container definitions, IAM policies) wait for `pulumi up`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_helpers import changed, options
from pulumi_policy import (
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE as UNKNOWN
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy
from test_resource_rules import (
    ALB,
    DB,
    HTTPS,
    INGRESS,
    MSK,
    REDIS,
    REPLICA,
    ROLE_POLICY,
    SERVICE,
    TOPIC,
)
from test_stack_rules import stack

from policies import catalog
from policies import tokens as t
from policies.model import policy_of

PREVIEW: list[tuple[str, str, dict[str, Any]]] = [
    (
        "rds-primary",
        t.RDS_INSTANCE,
        changed(
            DB,
            vpcSecurityGroupIds=[UNKNOWN],
            dbSubnetGroupName=UNKNOWN,
            parameterGroupName=UNKNOWN,
            kmsKeyId=UNKNOWN,
            monitoringRoleArn=UNKNOWN,
            password=UNKNOWN,
        ),
    ),
    (
        "rds-replica",
        t.RDS_INSTANCE,
        changed(REPLICA, replicateSourceDb=UNKNOWN, vpcSecurityGroupIds=[UNKNOWN]),
    ),
    (
        "redis",
        t.REPLICATION_GROUP,
        changed(
            REDIS,
            authToken=UNKNOWN,
            subnetGroupName=UNKNOWN,
            securityGroupIds=[UNKNOWN],
            kmsKeyId=UNKNOWN,
        ),
    ),
    ("alb", t.LOAD_BALANCER, changed(ALB, accessLogs={"bucket": UNKNOWN, "enabled": True})),
    (
        "https-listener",
        t.LISTENER,
        changed(
            HTTPS,
            loadBalancerArn=UNKNOWN,
            certificateArn=UNKNOWN,
            defaultActions=[{"type": "forward", "targetGroupArn": UNKNOWN}],
        ),
    ),
    ("ingress", t.INGRESS, changed(INGRESS, securityGroupId=UNKNOWN)),
    (
        "service",
        t.ECS_SERVICE,
        changed(
            SERVICE,
            cluster=UNKNOWN,
            taskDefinition=UNKNOWN,
            networkConfiguration={
                "subnets": [UNKNOWN],
                "securityGroups": [UNKNOWN],
                "assignPublicIp": False,
            },
        ),
    ),
    ("task", t.TASK_DEFINITION, {"networkMode": "awsvpc", "containerDefinitions": UNKNOWN}),
    (
        "msk",
        t.MSK_CLUSTER,
        changed(
            MSK,
            brokerNodeGroupInfo={
                **MSK["brokerNodeGroupInfo"],
                "clientSubnets": [UNKNOWN, UNKNOWN],
                "securityGroups": [UNKNOWN],
            },
            encryptionInfo={
                **MSK["encryptionInfo"],
                "encryptionAtRestKmsKeyArn": UNKNOWN,
            },
            loggingInfo={"brokerLogs": {"cloudwatchLogs": {"enabled": True, "logGroup": UNKNOWN}}},
            configurationInfo={"arn": UNKNOWN, "revision": UNKNOWN},
        ),
    ),
    ("msk-topic", t.MSK_TOPIC, changed(TOPIC, clusterArn=UNKNOWN)),
    ("role-policy", t.IAM_ROLE_POLICY, changed(ROLE_POLICY, role=UNKNOWN, policy=UNKNOWN)),
]

# Rules that read a document that embeds ARNs, so they run at `pulumi up`, not at preview.
WAIT_FOR_UP = {"E1", "E2", "E3a", "E4", "E5", "I1a"}


@pytest.mark.parametrize(
    ("resource_type", "props"), [pytest.param(ty, p, id=label) for label, ty, p in PREVIEW]
)
def test_resource_rules_run_on_unknown_references(
    resource_type: str, props: dict[str, Any]
) -> None:
    skipped: set[str] = set()
    for rule in catalog.rules():
        if resource_type not in rule.types:
            continue
        policy = policy_of(rule)
        assert isinstance(policy, ResourceValidationPolicy)
        args = ResourceValidationArgs(
            resource_type,
            unknown_checking_proxy(json.loads(json.dumps(props))),
            "urn:pulumi:test::cold-reach::x::y",
            "y",
            options(protect=True),
            None,
        )
        found: list[str] = []
        try:
            policy.validate(args, lambda message, urn=None, sink=found: sink.append(message))
        except UnknownValueError:
            skipped.add(rule.id)
            continue
        assert found == [], (rule.id, found)
    assert skipped <= WAIT_FOR_UP


def test_stack_rules_run_on_unknown_ids() -> None:
    """Stack rules follow property dependencies, which a preview knows, not ids."""
    g = stack()
    g.props("flow").update(logDestination=UNKNOWN, vpcId=UNKNOWN)
    g.props("db-replica").update(replicateSourceDb=UNKNOWN)
    for name in ("db-in-web", "db-in-worker", "cache-in-web", "cache-in-worker", "web-in-lb"):
        g.props(name).update(securityGroupId=UNKNOWN, referencedSecurityGroupId=UNKNOWN)
    args = g.args()
    proxied = {
        r.urn: PolicyResource(
            r.resource_type,
            unknown_checking_proxy(dict(r.props)),
            r.urn,
            r.name,
            r.opts,
            None,
            None,
            [],
            {},
        )
        for r in args.resources
    }
    for r in args.resources:
        p = proxied[r.urn]
        p.dependencies = [proxied[d.urn] for d in r.dependencies]
        p.property_dependencies = {
            k: [proxied[d.urn] for d in v] for k, v in r.property_dependencies.items()
        }
    preview = StackValidationArgs(list(proxied.values()))
    for rule in catalog.rules():
        if not rule.is_stack_rule:
            continue
        policy = policy_of(rule)
        assert isinstance(policy, StackValidationPolicy)
        found: list[str] = []
        policy.validate(preview, lambda message, urn=None, sink=found: sink.append(message))
        assert found == [], (rule.id, found)
