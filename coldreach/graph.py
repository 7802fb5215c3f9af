"""Questions about a deployment's graph: who may reach whom, what is stateful.

Inputs refer to other resources by id (the `plan --json` contract in
README.md), so following an edge is a lookup by id.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldreach.runtime.model import Deployment, Resource
from policies.resource_types import STATEFUL

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
WORLD = ("0.0.0.0/0", "::/0")
EKS_CLUSTER = "aws:eks/cluster:Cluster"
CLUSTER_NODE = "eks-cluster"
"""EKS's cluster security group as a node of the `plumbing` flows."""

# Types whose loss loses data or identity; a promotion must never replace or delete them.
STATEFUL_TYPES = frozenset(STATEFUL)


@dataclass(frozen=True)
class Ingress:
    """One way into a security group: from another group, or from a CIDR."""

    rule: Resource
    group_id: str
    port_from: int | None
    port_to: int | None
    protocol: str
    source_group: str | None
    cidr: str | None

    @property
    def from_world(self) -> bool:
        return self.cidr in WORLD

    def covers(self, port: int) -> bool:
        if self.protocol == "-1":
            return True
        return (self.port_from or 0) <= port <= (self.port_to or 65535)


def ingress(deployment: Deployment, group_id: str | None = None) -> list[Ingress]:
    """Every ingress rule (standalone or inline), optionally only those into `group_id`."""
    found: list[Ingress] = []

    def rule_resource(r: Resource, protocol: str, source: str | None, cidr: str | None) -> None:
        found.append(
            Ingress(r, r.get("securityGroupId"), r.get("fromPort"), r.get("toPort"),
                    str(r.get(protocol)), source, cidr)
        )  # fmt: skip

    for r in deployment.of_type(INGRESS):
        cidr = r.get("cidrIpv4") or r.get("cidrIpv6")
        rule_resource(r, "ipProtocol", r.get("referencedSecurityGroupId"), cidr)
    # The older rule resource opens a group just the same: an ingress of that type counts.
    for r in deployment.of_type(SG_RULE):
        if r.get("type") != "ingress":
            continue
        cidrs = (r.get("cidrBlocks") or []) + (r.get("ipv6CidrBlocks") or [])
        group = r.get("sourceSecurityGroupId") or (
            r.get("securityGroupId") if r.get("self") else None
        )
        for cidr in cidrs or [None]:
            rule_resource(r, "protocol", group if cidr is None else None, cidr)
    # Inline rules would bypass the rule resources above; count them too.
    for sg in deployment.of_type(SECURITY_GROUP):
        for rule in sg.get("ingress") or []:
            sources = (rule.get("cidrBlocks") or []) + (rule.get("ipv6CidrBlocks") or [])
            groups = rule.get("securityGroups") or []
            for source in sources or [None]:
                for group in groups or [None]:
                    found.append(
                        Ingress(
                            sg,
                            str(sg.id),
                            rule.get("fromPort"),
                            rule.get("toPort"),
                            str(rule.get("protocol")),
                            group,
                            source,
                        )
                    )
    if group_id is None:
        return found
    return [i for i in found if i.group_id == group_id]


def security_groups_of(deployment: Deployment, resource: Resource) -> list[Resource]:
    """The security groups a resource sits in (RDS, ElastiCache, MSK, ALB, ECS service, ...)."""
    ids: list[str] = []
    for key in ("vpcSecurityGroupIds", "securityGroupIds", "securityGroups"):
        ids += resource.get(key) or []
    net = resource.get("networkConfiguration") or {}
    ids += net.get("securityGroups") or []
    # MSK names them inside its broker block.
    ids += (resource.get("brokerNodeGroupInfo") or {}).get("securityGroups") or []
    return [deployment.by_id(i) for i in ids]


def stateful(deployment: Deployment) -> list[Resource]:
    return [r for r in deployment if r.type in STATEFUL_TYPES]


def node_of(deployment: Deployment, group_id: str | None) -> str | None:
    """The topology node a security group is (its `coldreach:node` tag), None if untagged."""
    if group_id is None:
        return None
    try:
        return (deployment.by_id(group_id).get("tags") or {}).get("coldreach:node")
    except KeyError:
        return None


def cluster_groups(deployment: Deployment) -> dict[str, str]:
    """EKS's cluster security groups by id: EKS creates them, so no resource of the stack
    carries a tag; the cluster reports the id."""
    found: dict[str, str] = {}
    for cluster in deployment.of_type(EKS_CLUSTER):
        group = (cluster.out("vpcConfig") or {}).get("clusterSecurityGroupId")
        if group:
            found[group] = CLUSTER_NODE
    return found


def undeclared_ingress(deployment: Deployment) -> list[Ingress]:
    """Ingress between the stack's groups that neither a flow of the `topology` output
    declares nor the cluster's plumbing (its `plumbing` list: DNS, probes, NodePort)."""
    shape = deployment.output("topology")
    flows = {(f["from"], f["to"], f["port"]) for f in shape["flows"] + shape.get("plumbing", [])}
    clusters = cluster_groups(deployment)

    def node(group_id: str | None) -> str | None:
        return clusters.get(group_id or "") or node_of(deployment, group_id)

    found: list[Ingress] = []
    for rule in ingress(deployment):
        target = node(rule.group_id)
        source = "internet" if rule.from_world else node(rule.source_group)
        ports = range(rule.port_from or 0, (rule.port_to or 65535) + 1)
        if rule.protocol == "-1" or not any((source, target, p) in flows for p in ports):
            found.append(rule)
        elif len(ports) > 1:
            found.append(rule)  # a range opens more than the one declared port
    return found
