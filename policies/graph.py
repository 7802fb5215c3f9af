"""Stack rules that follow references between resources.

References are followed through `property_dependencies` (which property of
which resource came from which other resource). The engine knows them even
during a preview of new resources, when ids are still unknown; the offline
evaluation rebuilds them from ids and ARNs (coldreach/policy_eval.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policies import tokens as t
from policies.model import (
    items,
    mapping,
    of_type,
    port_range,
    present,
    protocol,
    referrers,
    refs,
    stack_rule,
    strings,
    world_cidrs,
)

Finding = tuple[str | None, str]
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379, "valkey": 6379}
MSK_IAM_PORT = 9098
"""The only listener an IAM-authenticated MSK cluster needs inside the VPC."""


@stack_rule(
    "N1",
    "vpc-flow-logs",
    sources=("SH EC2.6", "CIS 3.7", "CKV2_AWS_11", "AVD-AWS-0178"),
    severity=Severity.MEDIUM,
    description="Every VPC has a flow log of ALL or REJECT traffic to a destination",
)
def vpc_flow_logs(args: StackValidationArgs) -> Iterator[Finding]:
    for vpc in of_type(args, t.VPC):
        logs = referrers(args, vpc, "vpcId", t.FLOW_LOG)
        good = [
            f
            for f in logs
            if f.props.get("trafficType") in ("ALL", "REJECT")
            and (present(f.props, "logDestination") or present(f.props, "logGroupName"))
        ]
        if not logs:
            yield vpc.urn, "VPC has no flow log"
        elif not good:
            yield (
                vpc.urn,
                "VPC flow log records neither ALL nor REJECT traffic, or has no destination",
            )


@stack_rule(
    "N2",
    "default-security-group-closed",
    sources=("SH EC2.2", "CIS 5.4", "CKV2_AWS_12", "AVD-AWS-0173"),
    severity=Severity.HIGH,
    description="Every VPC's default security group is managed and allows no traffic",
)
def default_sg_closed(args: StackValidationArgs) -> Iterator[Finding]:
    for vpc in of_type(args, t.VPC):
        defaults = referrers(args, vpc, "vpcId", t.DEFAULT_SG)
        if not defaults:
            yield vpc.urn, "the VPC's default security group is not managed, so it allows traffic"
        for sg in defaults:
            if items(sg.props.get("ingress")) or items(sg.props.get("egress")):
                yield sg.urn, "the default security group has rules"


def _lb_groups(args: StackValidationArgs, *, internet_facing: bool) -> set[str]:
    """URNs of the security groups of load balancers (only internet-facing ones, if asked)."""
    return {
        sg.urn
        for lb in of_type(args, *t.LOAD_BALANCERS)
        if not internet_facing or lb.props.get("internal") is not True
        for sg in refs(lb, "securityGroups", t.SECURITY_GROUP)
    }


def _ingress_rules(args: StackValidationArgs) -> list[PolicyResource]:
    """The ingress rule resources: each SecurityGroupIngressRule, each ingress SecurityGroupRule."""
    return [
        r
        for r in of_type(args, t.INGRESS, t.SG_RULE)
        if r.resource_type != t.SG_RULE or r.props.get("type") == "ingress"
    ]


def _rule_group(rule: PolicyResource) -> list[PolicyResource]:
    return refs(rule, "securityGroupId", t.SECURITY_GROUP)


def _rule_sources(rule: PolicyResource) -> list[PolicyResource]:
    """The security groups an ingress rule resource admits."""
    if rule.resource_type == t.INGRESS:
        return refs(rule, "referencedSecurityGroupId", t.SECURITY_GROUP)
    return refs(rule, "sourceSecurityGroupId", t.SECURITY_GROUP)


def _inline_ingress(sg: PolicyResource) -> list[Mapping[str, Any]]:
    """The inline ingress rules of a security group."""
    return [mapping(r) for r in items(sg.props.get("ingress"))]


def _address_ranges(props: Mapping[str, Any], *, prefix_list_ids: bool = True) -> list[str]:
    """The CIDRs and prefix lists an ingress rule admits (N9 does not read `prefixListIds`)."""
    ranges = [props.get("cidrIpv4"), props.get("cidrIpv6"), props.get("prefixListId")]
    ranges += strings(props.get("cidrBlocks")) + strings(props.get("ipv6CidrBlocks"))
    if prefix_list_ids:
        ranges += strings(props.get("prefixListIds"))
    return [r for r in ranges if r]


@stack_rule(
    "N5b",
    "world-ingress-only-on-public-load-balancer",
    sources=("SH EC2.18", "CKV_AWS_260 (80 suppressed)", "AVD-AWS-0107"),
    severity=Severity.CRITICAL,
    description="Only the security group of an internet-facing load balancer admits the internet",
)
def world_ingress_only_lb(args: StackValidationArgs) -> Iterator[Finding]:
    lb_groups = _lb_groups(args, internet_facing=True)
    for rule in _ingress_rules(args):
        if not world_cidrs(rule.props):
            continue
        groups = _rule_group(rule)
        if not groups or any(g.urn not in lb_groups for g in groups):
            names = ", ".join(g.name for g in groups) or "an unknown group"
            yield rule.urn, f"admits the internet into {names}, not a public load balancer's group"
    for sg in of_type(args, t.SECURITY_GROUP):
        if any(world_cidrs(r) for r in _inline_ingress(sg)) and sg.urn not in lb_groups:
            yield sg.urn, "inline ingress admits the internet, and this is no load balancer's group"


def app_groups(args: StackValidationArgs) -> dict[str, PolicyResource]:
    """The app's security groups, by URN: those of the ECS services, and those the cluster's
    nodes start with (their node groups' launch templates), which the load balancer reaches
    on the API's NodePort. EKS's own cluster group is not the stack's and is not listed."""
    groups = {
        sg.urn: sg
        for svc in of_type(args, t.ECS_SERVICE)
        for sg in refs(svc, "networkConfiguration", t.SECURITY_GROUP)
    }
    for nodes in of_type(args, t.EKS_NODE_GROUP):
        for template in refs(nodes, "launchTemplate", t.LAUNCH_TEMPLATE):
            for sg in refs(template, "vpcSecurityGroupIds", t.SECURITY_GROUP):
                groups[sg.urn] = sg
    return groups


NODE_TAG = "coldreach:node"
ADMITS_TAG = "coldreach:admits"


def node(sg: PolicyResource) -> str | None:
    """Which node of the declared topology a security group is (its `coldreach:node` tag)."""
    return (mapping(sg.props.get("tags")) or {}).get(NODE_TAG)


def admits(sg: PolicyResource) -> list[str] | None:
    """The nodes the declared topology lets into a group (`coldreach:admits`), or None."""
    value = (mapping(sg.props.get("tags")) or {}).get(ADMITS_TAG)
    return None if value is None else str(value).split()


def data_port(resource: PolicyResource) -> int:
    """The port a database or cache listens on; a replica without one uses its source's."""
    port = resource.props.get("port")
    if port is not None:
        return int(port)
    for source in refs(resource, "replicateSourceDb", t.RDS_INSTANCE):
        if source.props.get("port") is not None:
            return int(source.props["port"])
    if resource.resource_type == t.MSK_CLUSTER:
        return MSK_IAM_PORT
    engine = str(resource.props.get("engine") or "")
    if resource.resource_type == t.REPLICATION_GROUP:
        return DEFAULT_PORTS.get(engine, 6379)
    return DEFAULT_PORTS.get(engine, 5432)


GROUPS_KEY = {t.RDS_INSTANCE: "vpcSecurityGroupIds", t.MSK_CLUSTER: "brokerNodeGroupInfo"}
"""Where each data tier names its security groups (MSK: inside its broker block)."""


def data_groups(resource: PolicyResource) -> list[PolicyResource]:
    return refs(
        resource, GROUPS_KEY.get(resource.resource_type, "securityGroupIds"), t.SECURITY_GROUP
    )


def _ingress_findings(
    rule: Mapping[str, Any],
    sources: list[PolicyResource],
    port: int,
    declared: list[str],
) -> Iterator[str]:
    ranges = _address_ranges(rule)
    for cidr in ranges:
        yield f"admits the address range {cidr}; only the app's security groups may connect"
    proto = protocol(rule)
    low, high = port_range(rule)
    if proto not in ("tcp", "6") or (low, high) != (port, port):
        yield f"opens {proto} {low}-{high}; only TCP {port} is needed"
    if rule.get("self") is True:
        yield "admits its own members (self); only the app's security groups may connect"
    if not sources and not ranges and rule.get("self") is not True:
        yield "admits a security group that is not in this stack"
    for source in sources:
        if node(source) not in declared:
            what = node(source) or "no coldreach:node tag"
            yield (
                f"admits {source.name} ({what}), which the declared topology does not let in "
                f"(it admits: {' '.join(declared) or 'nothing'})"
            )


@stack_rule(
    "N6",
    "data-tier-ingress-only-from-app",
    sources=("Cold Reach: RDS/Redis only from the app", "SH EC2.19 (least-privilege form)"),
    severity=Severity.CRITICAL,
    description=(
        "RDS, ElastiCache and MSK security groups admit only the services the declared "
        "topology names (the group's coldreach:admits tag, matched against each source's "
        "coldreach:node tag), only on the engine's port, never an address range"
    ),
)
def data_tier_only_from_app(args: StackValidationArgs) -> Iterator[Finding]:
    app = app_groups(args)
    rules = _ingress_rules(args)
    checked: set[tuple[str, int]] = set()
    for data in of_type(args, *t.DATA_TIERS):
        port = data_port(data)
        groups = data_groups(data)
        if not groups:
            yield data.urn, "has no security group of its own (the VPC default would apply)"
        for sg in groups:
            if (sg.urn, port) in checked:
                continue
            checked.add((sg.urn, port))
            if sg.urn in app:
                yield sg.urn, f"{data.name} shares a security group with an app service"
            declared = admits(sg)
            if declared is None:
                yield (
                    sg.urn,
                    (
                        f"{data.name} ({sg.name}) has no coldreach:admits tag: the topology's "
                        "declaration of who may reach it is missing"
                    ),
                )
                declared = []
            for rule in rules:
                if sg.urn not in {g.urn for g in _rule_group(rule)}:
                    continue
                for message in _ingress_findings(rule.props, _rule_sources(rule), port, declared):
                    yield rule.urn, f"{data.name} ({sg.name}): {message}"
            inline_sources = refs(sg, "ingress", t.SECURITY_GROUP)
            for rule in _inline_ingress(sg):
                for message in _ingress_findings(rule, inline_sources, port, declared):
                    yield sg.urn, f"{data.name} ({sg.name}) inline rule: {message}"


def _public_subnets(args: StackValidationArgs) -> set[str]:
    """URNs of subnets that auto-assign public IPs or route to an internet gateway."""
    public_tables = {
        table.urn
        for route in of_type(args, t.ROUTE)
        if refs(route, "gatewayId", t.INTERNET_GATEWAY)
        for table in refs(route, "routeTableId", t.ROUTE_TABLE)
    }
    public_tables |= {
        table.urn
        for table in of_type(args, t.ROUTE_TABLE)
        if refs(table, "routes", t.INTERNET_GATEWAY)
    }
    found = {s.urn for s in of_type(args, t.SUBNET) if s.props.get("mapPublicIpOnLaunch") is True}
    for assoc in of_type(args, t.ROUTE_TABLE_ASSOCIATION):
        if any(table.urn in public_tables for table in refs(assoc, "routeTableId")):
            found |= {s.urn for s in refs(assoc, "subnetId", t.SUBNET)}
    return found


@stack_rule(
    "D2b",
    "data-tier-private-subnets",
    sources=("SH RDS.2", "PP rds-private-subnet-validation", "DESIGN decision 4"),
    severity=Severity.HIGH,
    description=(
        "RDS and ElastiCache subnet groups and MSK's broker subnets hold only private "
        "subnets (no internet route)"
    ),
)
def data_tier_private_subnets(args: StackValidationArgs) -> Iterator[Finding]:
    public = _public_subnets(args)
    for data in of_type(args, t.MSK_CLUSTER):
        for subnet in refs(data, "brokerNodeGroupInfo", t.SUBNET):
            if subnet.urn in public:
                yield data.urn, f"brokers in public subnet {subnet.name}"
    for data in of_type(args, t.RDS_INSTANCE, t.REPLICATION_GROUP):
        key = "dbSubnetGroupName" if data.resource_type == t.RDS_INSTANCE else "subnetGroupName"
        for group in refs(data, key, t.RDS_SUBNET_GROUP, t.CACHE_SUBNET_GROUP):
            for subnet in refs(group, "subnetIds", t.SUBNET):
                if subnet.urn in public:
                    yield (
                        data.urn,
                        f"subnet group {group.name} includes public subnet {subnet.name}",
                    )


TLS_PARAMETERS = {"rds.force_ssl": ("1",), "require_secure_transport": ("1", "ON", "on")}


@stack_rule(
    "D6b",
    "rds-tls-enforced",
    sources=("CKV2_AWS_69", "PP rds-instance-ssl-encryption"),
    severity=Severity.HIGH,
    description="Every instance uses a parameter group that refuses non-TLS connections",
)
def rds_tls_enforced(args: StackValidationArgs) -> Iterator[Finding]:
    for db in of_type(args, t.RDS_INSTANCE):
        groups = refs(db, "parameterGroupName", t.RDS_PARAMETER_GROUP)
        if not groups:
            yield db.urn, "no parameter group of ours: TLS is not enforced by configuration"
            continue
        for group in groups:
            params = {
                str(mapping(p).get("name")): str(mapping(p).get("value"))
                for p in items(group.props.get("parameters"))
            }
            if not any(params.get(k) in ok for k, ok in TLS_PARAMETERS.items()):
                yield db.urn, f"parameter group {group.name} does not set rds.force_ssl=1"


@stack_rule(
    "N9",
    "app-ingress-only-from-load-balancer",
    sources=("ADR 0001 (phase-1 public task IPs)", "SH ECS.2 (compensating control)"),
    severity=Severity.HIGH,
    description=(
        "The ECS services' and the cluster nodes' security groups admit only a load "
        "balancer's security group, never an address range or another group"
    ),
)
def app_only_from_lb(args: StackValidationArgs) -> Iterator[Finding]:
    lb_groups = _lb_groups(args, internet_facing=False)
    app = app_groups(args)
    for rule in _ingress_rules(args):
        groups = [g for g in _rule_group(rule) if g.urn in app]
        if not groups:
            continue
        sources = _rule_sources(rule)
        ranges = _address_ranges(rule.props, prefix_list_ids=False)
        for cidr in ranges:
            yield (
                rule.urn,
                f"{groups[0].name} admits the address range {cidr}; only the load balancer may",
            )
        if not sources and not ranges:
            yield rule.urn, f"{groups[0].name} admits a security group that is not in this stack"
        for source in sources:
            if source.urn not in lb_groups:
                yield (
                    rule.urn,
                    f"{groups[0].name} admits {source.name}, which is no load balancer's group",
                )
    for sg in app.values():
        for inline in _inline_ingress(sg):
            if _address_ranges(inline, prefix_list_ids=False):
                yield sg.urn, f"{sg.name} has inline ingress from an address range"
        for source in refs(sg, "ingress", t.SECURITY_GROUP):
            if source.urn not in lb_groups:
                yield (
                    sg.urn,
                    f"{sg.name} has inline ingress from {source.name}, no load balancer's group",
                )
