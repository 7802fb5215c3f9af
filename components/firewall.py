"""Security groups whose rules are separate resources, each with a description.

Rules are never inline: inline and standalone rules fight over the same group,
and a standalone rule can be added or removed without touching the group.
Sources are security groups wherever the peer is ours; a CIDR only for the
internet side of the load balancer and for outbound HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

ANYWHERE = "0.0.0.0/0"


class SecurityGroup:
    """An `aws.ec2.SecurityGroup` plus helpers that add its rules as children of `parent`.

    Not a component of its own: the group belongs to the component that owns
    the tier (database, service, load balancer), so its URN sits under that tier.
    """

    def __init__(
        self,
        name: str,
        description: str,
        vpc_id: pulumi.Input[str],
        parent: pulumi.Resource,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._parent = parent
        self.group = aws.ec2.SecurityGroup(
            name,
            description=description,
            vpc_id=vpc_id,
            # The caller's tags say which node of the topology this group is and whom
            # it admits, so the policy pack can check the rules against them.
            tags={"Name": name, **(tags or {})},
            opts=pulumi.ResourceOptions(parent=parent),
        )

    @property
    def id(self) -> pulumi.Output[str]:
        return self.group.id

    def allow_from_group(
        self,
        label: str,
        source: pulumi.Input[str],
        port: int,
        description: str,
        protocol: str = "tcp",
    ) -> aws.vpc.SecurityGroupIngressRule:
        return aws.vpc.SecurityGroupIngressRule(
            f"{self.name}-in-{label}",
            referenced_security_group_id=source,
            **self._rule(port, description, protocol),
        )

    def allow_from_internet(self, port: int, description: str) -> aws.vpc.SecurityGroupIngressRule:
        return aws.vpc.SecurityGroupIngressRule(
            f"{self.name}-in-{port}", cidr_ipv4=ANYWHERE, **self._rule(port, description)
        )

    def allow_to_group(
        self,
        label: str,
        target: pulumi.Input[str],
        port: int,
        description: str,
        protocol: str = "tcp",
    ) -> aws.vpc.SecurityGroupEgressRule:
        return aws.vpc.SecurityGroupEgressRule(
            f"{self.name}-out-{label}",
            referenced_security_group_id=target,
            **self._rule(port, description, protocol),
        )

    def allow_https_out(self, description: str) -> aws.vpc.SecurityGroupEgressRule:
        return aws.vpc.SecurityGroupEgressRule(
            f"{self.name}-out-https", cidr_ipv4=ANYWHERE, **self._rule(443, description)
        )

    def _rule(self, port: int, description: str, protocol: str = "tcp") -> dict[str, Any]:
        """What every rule of this group shares: the group, one port (TCP unless DNS needs
        UDP), a description."""
        return {
            "security_group_id": self.group.id,
            "ip_protocol": protocol,
            "from_port": port,
            "to_port": port,
            "description": description,
            "opts": pulumi.ResourceOptions(parent=self._parent),
        }


def connect(
    source: SecurityGroup, target: SecurityGroup, port: int, what: str
) -> list[pulumi.Resource]:
    """Lets `source` reach `target` on one TCP port: egress on one side, ingress on the other.
    Returns both rules, for what must wait until the path is open."""
    return [
        target.allow_from_group(source.name, source.id, port, f"{what}: from {source.name}"),
        source.allow_to_group(target.name, target.id, port, f"{what}: to {target.name}"),
    ]


class Flow(Protocol):
    """A declared flow (infra/topology.py): `source` reaches `target` on one TCP port."""

    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def label(self) -> str: ...


def wire(
    flows: Iterable[Flow], groups: Mapping[str, SecurityGroup], outside: str, https_out: str
) -> None:
    """One pair of rules per declared flow between our groups, and HTTPS out for a flow to
    `outside` (AWS's public APIs). Flows from a node without a group here (the internet,
    whose way in is the load balancer's listeners) are someone else's to wire."""
    for flow in flows:
        if flow.target == outside:
            groups[flow.source].allow_https_out(https_out)
        elif flow.source in groups:
            connect(groups[flow.source], groups[flow.target], flow.port, flow.label)
