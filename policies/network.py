"""Network rules over single resources: subnets, security-group rules, NACL rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies import tokens as t
from policies.model import (
    WORLD,
    items,
    mapping,
    port_range,
    protocol,
    resource_rule,
    world_cidrs,
)

ADMIN_PORTS = (22, 3389)
WEB_PORTS = (80, 443)


@resource_rule(
    "N3",
    "nacl-no-admin-ports-from-world",
    types=(t.NACL_RULE, t.NACL, t.DEFAULT_NACL),
    sources=("SH EC2.21", "CIS 5.1", "CKV_AWS_231", "CKV_AWS_232", "AVD-AWS-0105"),
    severity=Severity.HIGH,
    description="No network ACL allows 0.0.0.0/0 or ::/0 to reach SSH (22) or RDP (3389)",
)
def nacl_no_admin_ports(args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == t.NACL_RULE:
        entries: list[Mapping[str, Any]] = [args.props] if not args.props.get("egress") else []
    else:
        entries = [e for e in items(args.props.get("ingress")) if isinstance(e, Mapping)]
    for entry in entries:
        action = str(entry.get("ruleAction", entry.get("action", ""))).lower()
        cidrs = [entry.get("cidrBlock"), entry.get("ipv6CidrBlock")]
        if action != "allow" or not any(c in WORLD for c in cidrs):
            continue
        low, high = port_range(entry)
        for port in ADMIN_PORTS:
            if low <= port <= high:
                yield f"network ACL allows the internet to port {port}"


@resource_rule(
    "N4",
    "subnet-no-auto-public-ip",
    types=t.SUBNET,
    sources=("SH EC2.15", "CKV_AWS_130", "AVD-AWS-0164"),
    severity=Severity.MEDIUM,
    description="Subnets do not auto-assign public IPs (the ALB and NAT do not need it)",
)
def subnet_no_auto_public_ip(args: ResourceValidationArgs) -> Iterator[str]:
    if args.props.get("mapPublicIpOnLaunch") is True:
        yield "subnet auto-assigns public IPs (mapPublicIpOnLaunch=true)"
    if args.props.get("assignIpv6AddressOnCreation") is True:
        yield "subnet auto-assigns public IPv6 addresses (assignIpv6AddressOnCreation=true)"


def _inline_or_self(args: ResourceValidationArgs, direction: str) -> list[Mapping[str, Any]]:
    """The rules a resource carries: itself for a rule resource, its inline list for an SG."""
    if args.resource_type == t.SECURITY_GROUP:
        return [r for r in items(args.props.get(direction)) if isinstance(r, Mapping)]
    if args.resource_type == t.SG_RULE:
        return [args.props] if args.props.get("type") == direction else []
    return [args.props]


def _world_openings(
    args: ResourceValidationArgs, direction: str
) -> Iterator[tuple[str, str, int, int]]:
    """(first world CIDR, protocol, from port, to port) of each rule open to the internet."""
    for rule in _inline_or_self(args, direction):
        cidrs = world_cidrs(rule)
        if cidrs:
            low, high = port_range(rule)
            yield cidrs[0], protocol(rule), low, high


@resource_rule(
    "N5",
    "world-ingress-only-http-https",
    types=(t.INGRESS, t.SG_RULE, t.SECURITY_GROUP),
    sources=(
        "SH EC2.18",
        "SH EC2.19",
        "CIS 5.2",
        "CIS 5.3",
        "CKV_AWS_24",
        "CKV_AWS_25",
        "CKV_AWS_277",
        "AVD-AWS-0107",
    ),
    severity=Severity.CRITICAL,
    description="Ingress from 0.0.0.0/0 or ::/0 only on TCP 443, and 80 for the redirect",
)
def world_ingress_only_web(args: ResourceValidationArgs) -> Iterator[str]:
    for cidr, proto, low, high in _world_openings(args, "ingress"):
        if proto not in ("tcp", "6") or low != high or low not in WEB_PORTS:
            where = "all ports" if (low, high) == (0, 65535) else f"ports {low}-{high}"
            yield f"ingress from {cidr} on {proto} {where}: only TCP 80/443 may be public"


@resource_rule(
    "N7",
    "egress-to-world-only-https",
    types=(t.EGRESS, t.SG_RULE, t.SECURITY_GROUP),
    sources=("CKV_AWS_382", "AVD-AWS-0104 (443 suppressed)"),
    severity=Severity.MEDIUM,
    description="Egress to 0.0.0.0/0 or ::/0 only on TCP 443; never all protocols or all ports",
)
def egress_only_https(args: ResourceValidationArgs) -> Iterator[str]:
    for cidr, proto, low, high in _world_openings(args, "egress"):
        if proto not in ("tcp", "6") or (low, high) != (443, 443):
            yield f"egress to {cidr} on {proto} ports {low}-{high}: only TCP 443 may leave"


@resource_rule(
    "N8",
    "security-group-descriptions",
    types=(t.SECURITY_GROUP, t.INGRESS, t.EGRESS, t.SG_RULE),
    sources=("CKV_AWS_23", "AVD-AWS-0099", "AVD-AWS-0124"),
    severity=Severity.LOW,
    description="Every security group and every rule says what it is for",
)
def security_group_descriptions(args: ResourceValidationArgs) -> Iterator[str]:
    description = str(args.props.get("description") or "").strip()
    if not description or description == "Managed by Pulumi":
        yield "no description: say which traffic this allows and why"
    if args.resource_type == t.SECURITY_GROUP:
        for direction in ("ingress", "egress"):
            for rule in items(args.props.get(direction)):
                if not str(mapping(rule).get("description") or "").strip():
                    yield f"an inline {direction} rule has no description"
