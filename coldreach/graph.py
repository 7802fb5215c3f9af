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
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
WORLD = ("0.0.0.0/0", "::/0")

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
    for r in deployment.of_type(INGRESS):
        found.append(
            Ingress(
                rule=r,
                group_id=r.get("securityGroupId"),
                port_from=r.get("fromPort"),
                port_to=r.get("toPort"),
                protocol=str(r.get("ipProtocol")),
                source_group=r.get("referencedSecurityGroupId"),
                cidr=r.get("cidrIpv4") or r.get("cidrIpv6"),
            )
        )
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
    """The security groups a resource sits in (RDS, ElastiCache, ALB, ECS service, ...)."""
    ids: list[str] = []
    for key in ("vpcSecurityGroupIds", "securityGroupIds", "securityGroups"):
        ids += resource.get(key) or []
    net = resource.get("networkConfiguration") or {}
    ids += net.get("securityGroups") or []
    return [deployment.by_id(i) for i in ids]


def stateful(deployment: Deployment) -> list[Resource]:
    return [r for r in deployment if r.type in STATEFUL_TYPES]
