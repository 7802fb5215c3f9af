"""The cutover from ECS to the cluster: the phase-2 load balancer and listener stay, and
`cold-reach:eksTrafficPercent` weighs the ECS and cluster target groups behind them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from deployment_helpers import CERT

from coldreach import replacement
from coldreach.runtime import Deployment, Resource
from infra.config import ConfigError, parse
from infra.layers.edge import API_NODE_PORT

LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def weights(d: Deployment) -> dict[str, int]:
    """Target group logical name -> weight of the listener's forward action."""
    (listener,) = d.of_type(LISTENER)
    (action,) = listener.get("defaultActions")
    assert action["type"] == "forward"
    if "forward" not in action:
        return {d.resolve(action["targetGroupArn"]).name: 100}
    groups: list[dict[str, Any]] = action["forward"]["targetGroups"]
    return {d.resolve(g["arn"]).name: g["weight"] for g in groups}


def cluster_targets(d: Deployment) -> Resource:
    return d.named("edge-cluster-targets")


@pytest.mark.parametrize(("percent", "ecs", "eks"), [(0, 100, 0), (25, 75, 25), (100, 0, 100)])
def test_the_listener_weighs_ecs_and_cluster_by_the_configured_share(
    program: Callable[..., Deployment], percent: int, ecs: int, eks: int
) -> None:
    d = program("staging", 3, eksTrafficPercent=str(percent))
    assert weights(d) == {"edge-targets": ecs, "edge-cluster-targets": eks}
    assert d.output("eks_traffic_percent") == percent


def test_phase_3_keeps_the_phase_2_load_balancer_listener_and_ecs_targets(
    program: Callable[..., Deployment],
) -> None:
    two, three = program("staging", 2), program("staging", 3)
    for name in ("edge-alb", "edge-http", "edge-targets"):
        assert two.named(name).urn == three.named(name).urn
        assert two.named(name).id == three.named(name).id
    assert three.named("edge-targets").inputs == two.named("edge-targets").inputs
    # Phase 2 forwards plainly to its one group, as before the cluster existed.
    assert weights(two) == {"edge-targets": 100}


def test_after_retiring_ecs_every_request_goes_to_the_cluster(
    program: Callable[..., Deployment],
) -> None:
    d = program("staging", 3, retireEcs="true", eksTrafficPercent="100")
    assert weights(d) == {"edge-cluster-targets": 100}
    assert d.output("eks_traffic_percent") == 100
    assert d.of_type("aws:ecs/service:Service") == []
    # The one-off database tasks ran in the ECS API's group; they go with it, and say so.
    assert d.of_type("aws:ecs/taskDefinition:TaskDefinition") == []
    assert "db_task_network" not in d.outputs
    assert [m for _, m in d.messages if "bootstrap and migrate tasks" in m]


def test_cluster_targets_are_the_nodes_on_the_api_node_port(
    program: Callable[..., Deployment],
) -> None:
    d = program("staging", 3)
    group = cluster_targets(d)
    assert group.get("targetType") == "instance"
    assert group.get("port") == API_NODE_PORT
    assert group.get("healthCheck")["path"] == "/healthz"
    (attachment,) = d.of_type("aws:autoscaling/attachment:Attachment")
    assert attachment.get("lbTargetGroupArn") == group.out("arn")
    (node_group,) = d.of_type("aws:eks/nodeGroup:NodeGroup")
    (asg,) = node_group.out("resources")[0]["autoscalingGroups"]
    assert attachment.get("autoscalingGroupName") == asg["name"]


def test_the_nodes_admit_only_the_load_balancer_and_only_on_the_node_port(
    program: Callable[..., Deployment],
) -> None:
    d = program("staging", 3)
    nodes = d.named("eks-nodes-sg")
    alb = d.by_id(d.named("edge-alb").get("securityGroups")[0])
    rules = [r for r in d.of_type(INGRESS) if r.get("securityGroupId") == nodes.id]
    found = [
        (r.get("referencedSecurityGroupId"), r.get("fromPort"), r.get("toPort")) for r in rules
    ]
    assert found == [(alb.id, API_NODE_PORT, API_NODE_PORT)]
    assert all(r.get("cidrIpv4") is None for r in rules)
    # The nodes carry EKS's cluster group (control plane <-> nodes) and ours, nothing else.
    template = d.by_id(d.of_type("aws:eks/nodeGroup:NodeGroup")[0].get("launchTemplate")["id"])
    cluster = d.of_type("aws:eks/cluster:Cluster")[0]
    assert template.get("vpcSecurityGroupIds") == [
        cluster.out("vpcConfig")["clusterSecurityGroupId"],
        nodes.id,
    ]


def test_traffic_share_is_a_percentage() -> None:
    get = {"phase": "3", "dbInstanceClass": "db.t3.medium", "eksTrafficPercent": "101"}.get
    with pytest.raises(ConfigError, match="eksTrafficPercent"):
        parse("staging", get, "us-east-1")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_promotion_to_phase_3_replaces_and_deletes_nothing(
    program: Callable[..., Deployment], stack: str
) -> None:
    steps = replacement.compare(program(stack, 2), program(stack, 3))
    changed = {(s.op, s.resource.name, s.inputs) for s in steps if s.op != "create"}
    # In place only: the listener's action becomes weighted, and the database group's
    # `coldreach:admits` tag names the cluster services the topology lets in.
    assert changed == {
        ("update", "edge-http", ("defaultActions",)),
        ("update", "db-sg", ("tags",)),
    }


def test_ecs_retires_only_after_the_cluster_takes_every_request() -> None:
    get = {"phase": "3", "dbInstanceClass": "db.t3.medium", "retireEcs": "true"}.get
    with pytest.raises(ConfigError, match="eksTrafficPercent is 100"):
        parse("staging", get, "us-east-1")


def test_with_https_the_https_listener_is_weighted_and_http_still_redirects(
    program: Callable[..., Deployment],
) -> None:
    d = program("staging", 3, certificateArn=CERT, eksTrafficPercent="40")
    https, http = d.named("edge-https"), d.named("edge-http")
    (forward,) = https.get("defaultActions")
    groups = {d.resolve(g["arn"]).name: g["weight"] for g in forward["forward"]["targetGroups"]}
    assert groups == {"edge-targets": 60, "edge-cluster-targets": 40}
    (redirect,) = http.get("defaultActions")
    assert redirect["type"] == "redirect"


def test_the_ses_webhook_survives_retiring_ecs(program: Callable[..., Deployment]) -> None:
    d = program(
        "staging",
        3,
        retireEcs="true",
        eksTrafficPercent="100",
        senderDomain="mail.example.com",
        feedbackWebhook="true",
    )
    (subscription,) = d.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.get("endpoint").endswith("/webhooks/ses")
