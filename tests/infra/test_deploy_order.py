"""Creation order a first `pulumi up` relies on, read from `plan --json` (`dependsOn`).

No emulator enforces these: AWS refuses an internet-facing ALB before the VPC's
gateway is attached, ECS tasks launched before their role's policy propagates fail
and trip the circuit breaker, and SNS can confirm a subscription only through DNS
that already points at the ALB.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from deployment_helpers import CERT

from coldreach.runtime import Deployment

Plan = dict[str, Any]


def plan_json(deployment: Deployment) -> Plan:
    return deployment.to_json()


def by_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def before(plan: Plan, urn: str) -> set[str]:
    """Every resource the engine must finish before `urn` (dependsOn, transitively)."""
    deps = {r["urn"]: r["dependsOn"] for r in plan["resources"]}
    seen: set[str] = set()
    todo = list(deps[urn])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += deps.get(dep, [])
    return seen


@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def plan(request: pytest.FixtureRequest, program: Callable[..., Deployment]) -> Plan:
    return plan_json(program(request.param))


def test_internet_facing_alb_waits_for_the_internet_gateway_and_its_route(plan: Plan) -> None:
    [alb] = by_type(plan, "aws:lb/loadBalancer:LoadBalancer")
    assert alb["inputs"]["internal"] is False
    [igw] = by_type(plan, "aws:ec2/internetGateway:InternetGateway")
    [route] = [
        r for r in by_type(plan, "aws:ec2/route:Route") if r["inputs"].get("gatewayId") == igw["id"]
    ]
    public_subnets = {s["id"] for s in by_type(plan, "aws:ec2/subnet:Subnet")} & set(
        alb["inputs"]["subnets"]
    )
    associations = [
        a["urn"]
        for a in by_type(plan, "aws:ec2/routeTableAssociation:RouteTableAssociation")
        if a["inputs"]["subnetId"] in public_subnets
    ]
    assert len(associations) == len(public_subnets) == 2
    assert {igw["urn"], route["urn"], *associations} <= before(plan, alb["urn"])


def test_services_wait_for_their_roles_policies(plan: Plan) -> None:
    services = by_type(plan, "aws:ecs/service:Service")
    assert services
    policies = {
        (p["inputs"]["role"], p["urn"]) for p in by_type(plan, "aws:iam/rolePolicy:RolePolicy")
    }
    roles = {r["urn"]: r for r in by_type(plan, "aws:iam/role:Role")}
    for service in services:
        [task_def] = [
            t
            for t in by_type(plan, "aws:ecs/taskDefinition:TaskDefinition")
            if t["urn"] in service["dependsOn"]
        ]
        execution_arn = task_def["inputs"]["executionRoleArn"]
        [execution_role] = [r for r in roles.values() if execution_arn.endswith(f":role/{r['id']}")]
        role_policies = {urn for role_id, urn in policies if role_id == execution_role["id"]}
        assert role_policies, f"{service['name']}: its execution role has no policy"
        assert role_policies <= set(service["dependsOn"]), service["name"]


def test_feedback_subscription_is_a_second_step(program: Callable[..., Deployment]) -> None:
    """Prod's first `pulumi up` has a hostname nobody has pointed at the ALB yet: it
    creates no subscription (SNS would wait 15 minutes and fail the update)."""
    first = plan_json(
        program("prod", certificateArn=CERT, publicHostname="api.example.com",
                senderDomain="mail.example.com")
    )  # fmt: skip
    assert not by_type(first, "aws:sns/topicSubscription:TopicSubscription")
    assert by_type(first, "aws:sns/topic:Topic"), "the topic itself exists from the start"

    second = plan_json(
        program("prod", certificateArn=CERT, publicHostname="api.example.com",
                senderDomain="mail.example.com", feedbackWebhook="true")
    )  # fmt: skip
    [sub] = by_type(second, "aws:sns/topicSubscription:TopicSubscription")
    assert sub["inputs"]["endpoint"] == "https://api.example.com/webhooks/ses"
    [web] = [s for s in by_type(second, "aws:ecs/service:Service") if s["name"] == "web-service"]
    listeners = {r["urn"] for r in by_type(second, "aws:lb/listener:Listener")}
    assert {web["urn"], *listeners} <= before(second, sub["urn"])


def test_dependencies_through_inputs_are_listed(plan: Plan) -> None:
    """No explicit depends_on links the database to its security group: the input does."""
    by_id = {r["id"]: r["urn"] for r in plan["resources"] if r["id"]}
    for db in by_type(plan, "aws:rds/instance:Instance"):
        groups = {by_id[sg] for sg in db["inputs"]["vpcSecurityGroupIds"]}
        assert groups and groups <= set(db["dependsOn"])
