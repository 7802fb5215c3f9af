"""Stack rules over a small hand-made stack: a compliant graph, then one change per condition.

References are property dependencies, as the engine passes them (ids may be
unknown during a preview); `Graph.add(type, name, props, prop=target_name)`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes_cases import KUBERNETES_STACK_FAILING, add_workload
from policy_helpers import Graph, check_stack

from policies import tokens as t

WORLD = "0.0.0.0/0"


def ingress(port: int, description: str = "rule", **props: object) -> dict[str, object]:
    return {
        "ipProtocol": "tcp",
        "fromPort": port,
        "toPort": port,
        "description": description,
        **props,
    }


def inline(port: int, cidr: str) -> list[dict[str, object]]:
    """An inline ingress list of one TCP rule from `cidr`."""
    return [{"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": [cidr]}]


def add_ingress(
    g: Graph, name: str, port: int, into: str | None, source: str | None = None, **props: object
) -> Graph:
    """Adds an ingress rule resource on `port` into group `into`, admitting group `source`."""
    groups = {"securityGroupId": into} if into else {}
    if source:
        groups["referencedSecurityGroupId"] = source
    return g.add(t.INGRESS, name, ingress(port, **props), **groups)


def tags(node: str, admits: str) -> dict[str, object]:
    """The topology's tags on a security group: which node it is and whom it admits."""
    return {"tags": {"coldreach:node": node, "coldreach:admits": admits}}


def stack() -> Graph:
    """A compliant phase-2 shape: VPC, public/private subnets, ALB, app, RDS + replica, Redis."""
    g = Graph()
    g.add(t.VPC, "vpc", {"cidrBlock": "10.0.0.0/16"})
    g.add(t.FLOW_LOG, "flow", {"trafficType": "ALL", "logDestination": "arn:logs"}, vpcId="vpc")
    g.add(t.DEFAULT_SG, "default-sg", {}, vpcId="vpc")
    g.add(t.INTERNET_GATEWAY, "igw", {}, vpcId="vpc")
    g.add(t.SUBNET, "public", {"mapPublicIpOnLaunch": False}, vpcId="vpc")
    g.add(t.SUBNET, "private-a", {"mapPublicIpOnLaunch": False}, vpcId="vpc")
    g.add(t.SUBNET, "private-b", {}, vpcId="vpc")
    g.add(t.ROUTE_TABLE, "public-rt", {}, vpcId="vpc")
    g.add(
        t.ROUTE,
        "public-default",
        {"destinationCidrBlock": WORLD},
        routeTableId="public-rt",
        gatewayId="igw",
    )
    g.add(
        t.ROUTE_TABLE_ASSOCIATION, "public-assoc", {}, subnetId="public", routeTableId="public-rt"
    )
    g.add(t.ROUTE_TABLE, "private-rt", {}, vpcId="vpc")
    g.add(
        t.ROUTE_TABLE_ASSOCIATION,
        "private-assoc-a",
        {},
        subnetId="private-a",
        routeTableId="private-rt",
    )
    g.add(
        t.SECURITY_GROUP, "lb-sg", {"description": "edge", **tags("edge", "internet")}, vpcId="vpc"
    )
    add_ingress(g, "lb-in-443", 443, "lb-sg", cidrIpv4=WORLD)
    g.add(
        t.LOAD_BALANCER,
        "alb",
        {"internal": False, "loadBalancerType": "application"},
        securityGroups=["lb-sg"],
        subnets=["public"],
    )
    g.add(t.WAF_ASSOCIATION, "waf", {}, resourceArn="alb")
    for app in ("web", "worker"):
        admitted = "edge" if app == "web" else ""
        g.add(
            t.SECURITY_GROUP, f"{app}-sg", {"description": app, **tags(app, admitted)}, vpcId="vpc"
        )
        g.add(t.IAM_ROLE, f"{app}-execution", {})
        g.add(t.IAM_ROLE, f"{app}-task-role", {})
        g.add(
            t.TASK_DEFINITION,
            f"{app}-task",
            {},
            executionRoleArn=f"{app}-execution",
            taskRoleArn=f"{app}-task-role",
        )
        g.add(
            t.ECS_SERVICE,
            f"{app}-service",
            {"networkConfiguration": {"assignPublicIp": False}},
            networkConfiguration=[f"{app}-sg", "private-a", "private-b"],
            taskDefinition=f"{app}-task",
        )
    add_ingress(g, "web-in-lb", 8000, "web-sg", "lb-sg")
    g.add(
        t.SECURITY_GROUP,
        "db-sg",
        {"description": "db", **tags("database", "web worker")},
        vpcId="vpc",
    )
    g.add(t.RDS_SUBNET_GROUP, "db-subnets", {}, subnetIds=["private-a", "private-b"])
    g.add(
        t.RDS_PARAMETER_GROUP,
        "db-params",
        {"family": "postgres16", "parameters": [{"name": "rds.force_ssl", "value": "1"}]},
    )
    g.add(
        t.RDS_INSTANCE,
        "db",
        {"engine": "postgres", "port": 5432, "manageMasterUserPassword": True},
        vpcSecurityGroupIds=["db-sg"],
        dbSubnetGroupName="db-subnets",
        parameterGroupName="db-params",
    )
    g.add(
        t.RDS_INSTANCE,
        "db-replica",
        {"replicateSourceDb": "db-1"},
        replicateSourceDb="db",
        vpcSecurityGroupIds=["db-sg"],
        parameterGroupName="db-params",
    )
    g.add(
        t.SECURITY_GROUP,
        "cache-sg",
        {"description": "cache", **tags("cache", "web worker")},
        vpcId="vpc",
    )
    g.add(t.CACHE_SUBNET_GROUP, "cache-subnets", {}, subnetIds=["private-a", "private-b"])
    g.add(
        t.REPLICATION_GROUP,
        "redis",
        {"engine": "redis", "port": 6379},
        securityGroupIds=["cache-sg"],
        subnetGroupName="cache-subnets",
    )
    for app in ("web", "worker"):
        add_ingress(g, f"db-in-{app}", 5432, "db-sg", f"{app}-sg")
        add_ingress(g, f"cache-in-{app}", 6379, "cache-sg", f"{app}-sg")
    g.add(t.ECR_REPOSITORY, "repo", {})
    g.add(t.ECR_LIFECYCLE, "repo-lifecycle", {"policy": "{}"}, repository="repo")
    return add_workload(g)


STACK_RULES = ["N1", "N2", "N5b", "N6", "N9", "D2b", "D6b", "R3", "I1c", "S1", "A5", "W8", "W9"]


@pytest.mark.parametrize("rule", STACK_RULES)
def test_compliant_stack(rule: str) -> None:
    assert check_stack(rule, stack()) == []


Change = Callable[[Graph], object]

FAILING: list[tuple[str, str, Change, str, str]] = [
    # (rule, label, change, resource named in the finding, message fragment)
    ("N1", "missing", lambda g: g.remove("flow"), "vpc", "no flow log"),
    ("N1", "accept-only", lambda g: g.props("flow").update(trafficType="ACCEPT"), "vpc", "neither"),
    ("N1", "no-destination", lambda g: g.props("flow").pop("logDestination"), "vpc", "destination"),
    ("N2", "unmanaged", lambda g: g.remove("default-sg"), "vpc", "not managed"),
    (
        "N2",
        "rules",
        lambda g: g.props("default-sg").update(ingress=[{"protocol": "-1", "self": True}]),
        "default-sg",
        "has rules",
    ),
    (
        "N5b",
        "world-into-app",
        lambda g: add_ingress(g, "web-in-world", 8000, "web-sg", cidrIpv4=WORLD),
        "web-in-world",
        "web-sg",
    ),
    ("N5b", "internal-lb", lambda g: g.props("alb").update(internal=True), "lb-in-443", "lb-sg"),
    (
        "N5b",
        "group-missing",
        lambda g: add_ingress(g, "orphan-in", 443, None, cidrIpv4=WORLD),
        "orphan-in",
        "unknown group",
    ),
    (
        "N5b",
        "inline-world",
        lambda g: g.props("worker-sg").update(ingress=inline(443, WORLD)),
        "worker-sg",
        "inline ingress",
    ),
    (
        "N6",
        "cidr",
        lambda g: g.props("db-in-web").update(cidrIpv4="10.0.0.0/16"),
        "db-in-web",
        "address range 10.0.0.0/16",
    ),
    (
        "N6",
        "world",
        lambda g: add_ingress(g, "db-in-world", 5432, "db-sg", cidrIpv4=WORLD),
        "db-in-world",
        "address range 0.0.0.0/0",
    ),
    (
        "N6",
        "from-lb",
        lambda g: add_ingress(g, "db-in-lb", 5432, "db-sg", "lb-sg"),
        "db-in-lb",
        "admits lb-sg",
    ),
    (
        "N6",
        "source-not-declared",
        lambda g: g.props("cache-sg").update(tags("cache", "worker")),
        "cache-in-web",
        "admits web-sg (web), which the declared topology does not let in (it admits: worker)",
    ),
    (
        "N6",
        "source-without-node-tag",
        lambda g: g.props("worker-sg").pop("tags"),
        "db-in-worker",
        "admits worker-sg (no coldreach:node tag)",
    ),
    (
        "N6",
        "admits-tag-missing",
        lambda g: g.props("db-sg").pop("tags"),
        "db-sg",
        "has no coldreach:admits tag",
    ),
    (
        "N6",
        "wrong-port",
        lambda g: g.props("cache-in-worker").update(fromPort=6370),
        "cache-in-worker",
        "opens tcp 6370-6379",
    ),
    (
        "N6",
        "all-protocols",
        lambda g: g.props("db-in-worker").update(ipProtocol="-1"),
        "db-in-worker",
        "opens -1",
    ),
    (
        "N6",
        "prefix-list",
        lambda g: add_ingress(g, "cache-in-pl", 6379, "cache-sg", prefixListId="pl-123"),
        "cache-in-pl",
        "pl-123",
    ),
    (
        "N6",
        "source-outside-stack",
        lambda g: add_ingress(g, "db-in-ext", 5432, "db-sg", referencedSecurityGroupId="sg-0ext"),
        "db-in-ext",
        "not in this stack",
    ),
    (
        "N6",
        "groups-missing",
        lambda g: g.refer("redis", "securityGroupIds"),
        "redis",
        "no security group",
    ),
    (
        "N6",
        "shares-app-group",
        lambda g: g.refer("db", "vpcSecurityGroupIds", "web-sg"),
        "web-sg",
        "shares a security group",
    ),
    (
        "N6",
        "inline-cidr",
        lambda g: g.props("cache-sg").update(ingress=inline(6379, "10.0.0.0/8")),
        "cache-sg",
        "inline rule: admits the address range",
    ),
    (
        "N6",
        "sg-rule-resource",
        lambda g: g.add(
            t.SG_RULE,
            "db-rule",
            {
                "type": "ingress",
                "protocol": "tcp",
                "fromPort": 5432,
                "toPort": 5432,
                "cidrBlocks": ["10.1.0.0/16"],
            },
            securityGroupId="db-sg",
        ),
        "db-rule",
        "10.1.0.0/16",
    ),
    (
        "N9",
        "cidr-into-web",
        lambda g: g.props("web-in-lb").update(cidrIpv4="10.0.0.0/8"),
        "web-in-lb",
        "admits the address range 10.0.0.0/8",
    ),
    (
        "N9",
        "from-worker",
        lambda g: add_ingress(g, "web-in-worker", 8000, "web-sg", "worker-sg"),
        "web-in-worker",
        "admits worker-sg",
    ),
    (
        "N9",
        "source-missing",
        lambda g: add_ingress(
            g, "worker-in-ext", 8000, "worker-sg", referencedSecurityGroupId="sg-0ext"
        ),
        "worker-in-ext",
        "not in this stack",
    ),
    (
        "N9",
        "inline-cidr",
        lambda g: g.props("worker-sg").update(ingress=inline(8000, "10.0.0.0/8")),
        "worker-sg",
        "inline ingress from an address range",
    ),
    (
        "N9",
        "inline-group",
        lambda g: g.refer("web-sg", "ingress", "db-sg"),
        "web-sg",
        "inline ingress from db-sg",
    ),
    (
        "D2b",
        "public-subnet",
        lambda g: g.refer("db-subnets", "subnetIds", "private-a", "public"),
        "db",
        "public subnet public",
    ),
    (
        "D2b",
        "auto-public-ip",
        lambda g: g.props("private-b").update(mapPublicIpOnLaunch=True),
        "redis",
        "public subnet private-b",
    ),
    (
        "D6b",
        "group-missing",
        lambda g: g.refer("db-replica", "parameterGroupName"),
        "db-replica",
        "no parameter group",
    ),
    (
        "D6b",
        "not-forced",
        lambda g: g.props("db-params").update(parameters=[]),
        "db",
        "rds.force_ssl",
    ),
    (
        "D6b",
        "zero",
        lambda g: g.props("db-params").update(parameters=[{"name": "rds.force_ssl", "value": "0"}]),
        "db",
        "rds.force_ssl",
    ),
    ("R3", "missing", lambda g: g.remove("repo-lifecycle"), "repo", "no lifecycle"),
    (
        "I1c",
        "same-role",
        lambda g: g.refer("web-task", "taskRoleArn", "web-execution"),
        "web-task",
        "same role",
    ),
    (
        "S1",
        "no-rotation",
        lambda g: g.props("db").pop("manageMasterUserPassword"),
        "db",
        "never rotates",
    ),
    ("A5", "missing", lambda g: g.remove("waf"), "alb", "no WAF"),
    *KUBERNETES_STACK_FAILING,
]


@pytest.mark.parametrize(
    ("rule", "change", "resource", "fragment"),
    [pytest.param(r, c, res, f, id=f"{r}-{label}") for r, label, c, res, f in FAILING],
)
def test_failing_stack(rule: str, change: Change, resource: str, fragment: str) -> None:
    g = stack()
    change(g)
    found = check_stack(rule, g)
    assert found, f"{rule} reported nothing"
    assert any(urn == g.urn(resource) and fragment in message for urn, message in found), found


def test_every_stack_rule_is_tested() -> None:
    from policies import catalog

    assert {r.id for r in catalog.rules() if r.is_stack_rule} == set(STACK_RULES)
    assert {r for r, *_ in FAILING} == set(STACK_RULES)


def test_replica_without_port_is_checked_on_its_sources_port() -> None:
    """The primary moves to a group of its own, so only the replica is checked on db-sg:
    with the source's port it finds the 5432 rules wrong, with the default it would not."""
    g = stack()
    g.props("db").update(port=5433)
    g.add(
        t.SECURITY_GROUP,
        "primary-sg",
        {"description": "primary", **tags("database", "web worker")},
        vpcId="vpc",
    )
    g.refer("db", "vpcSecurityGroupIds", "primary-sg")
    found = check_stack("N6", g)
    assert {m for _, m in found} == {
        "db-replica (db-sg): opens tcp 5432-5432; only TCP 5433 is needed"
    }


def test_rotation_by_secret_rotation_resource() -> None:
    g = stack()
    g.props("db").pop("manageMasterUserPassword")
    g.add(t.SECRET_ROTATION, "db-rotation", {"rotationRules": {"automaticallyAfterDays": 30}})
    assert check_stack("S1", g) == []


def test_internal_load_balancer_needs_no_waf() -> None:
    g = stack().remove("waf")
    g.props("alb").update(internal=True)
    assert check_stack("A5", g) == []


def with_kafka(g: Graph) -> Graph:
    """The stack plus phase 3's MSK: its group (admitting a `sender` service) and brokers in
    the private subnets, both named inside `brokerNodeGroupInfo`."""
    g.add(t.SECURITY_GROUP, "sender-sg", {"description": "sender", **tags("sender", "")})
    g.add(
        t.SECURITY_GROUP,
        "kafka-sg",
        {"description": "kafka", **tags("kafka", "campaigns sender")},
        vpcId="vpc",
    )
    g.add(
        t.MSK_CLUSTER,
        "kafka",
        {"kafkaVersion": "3.9.x.kraft"},
        brokerNodeGroupInfo=["kafka-sg", "private-a", "private-b"],
    )
    return add_ingress(g, "kafka-in-sender", 9098, "kafka-sg", "sender-sg")


@pytest.mark.parametrize("rule", ["N6", "D2b"])
def test_kafka_compliant(rule: str) -> None:
    assert check_stack(rule, with_kafka(stack())) == []


@pytest.mark.parametrize(
    ("rule", "change", "resource", "fragment"),
    [
        (
            "N6",
            lambda g: add_ingress(g, "kafka-in-vpc", 9098, "kafka-sg", cidrIpv4="10.0.0.0/16"),
            "kafka-in-vpc",
            "address range 10.0.0.0/16",
        ),
        (
            "N6",
            lambda g: add_ingress(g, "kafka-in-web", 9098, "kafka-sg", "web-sg"),
            "kafka-in-web",
            "admits web-sg (web), which the declared topology does not let in",
        ),
        (
            "N6",
            lambda g: add_ingress(g, "kafka-plain", 9092, "kafka-sg", "sender-sg"),
            "kafka-plain",
            "only TCP 9098 is needed",
        ),
        (
            "N6",
            lambda g: g.refer("kafka", "brokerNodeGroupInfo", "private-a"),
            "kafka",
            "no security group of its own",
        ),
        (
            "D2b",
            lambda g: g.refer("kafka", "brokerNodeGroupInfo", "kafka-sg", "public"),
            "kafka",
            "brokers in public subnet public",
        ),
    ],
    ids=["cidr", "undeclared-source", "plaintext-port", "no-group", "public-subnet"],
)
def test_kafka_failing(rule: str, change: Change, resource: str, fragment: str) -> None:
    g = with_kafka(stack())
    change(g)
    found = check_stack(rule, g)
    assert any(urn == g.urn(resource) and fragment in message for urn, message in found), found


def _with_cluster_nodes(g: Graph) -> Graph:
    """Phase 3's nodes: a node group from a launch template whose group admits the ALB on
    the API's NodePort."""
    g.add(t.SECURITY_GROUP, "nodes-sg", {"description": "nodes", **tags("nodes", "")}, vpcId="vpc")
    g.add(t.LAUNCH_TEMPLATE, "nodes-template", {}, vpcSecurityGroupIds=["nodes-sg"])
    g.add(t.EKS_NODE_GROUP, "nodes", {}, launchTemplate="nodes-template")
    return add_ingress(g, "nodes-in-lb", 30080, "nodes-sg", "lb-sg")


def test_cluster_nodes_admit_only_the_load_balancer() -> None:
    g = _with_cluster_nodes(stack())
    assert check_stack("N9", g) == []
    add_ingress(g, "nodes-in-web", 30080, "nodes-sg", "web-sg")
    g.add(
        t.INGRESS,
        "nodes-in-cidr",
        ingress(30080, cidrIpv4="10.0.0.0/8"),
        securityGroupId="nodes-sg",
    )
    found = check_stack("N9", g)
    assert (
        g.urn("nodes-in-web"),
        "nodes-sg admits web-sg, which is no load balancer's group",
    ) in found
    assert any(urn == g.urn("nodes-in-cidr") and "10.0.0.0/8" in m for urn, m in found), found
