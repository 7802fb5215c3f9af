"""Security groups: data tiers admit only the app, only the load balancer faces the internet;
and placement: nothing private sits in a subnet routed to an internet gateway."""

from __future__ import annotations

from coldreach.verify.discovery import State
from coldreach.verify.discovery import admitted as admitted_services
from coldreach.verify.findings import FAIL, PASS, Finding
from coldreach.verify.permissions import (
    DB_PORT,
    REDIS_PORT,
    is_world,
    port_range,
    sources,
)

ALB_PORTS = frozenset({80, 443})
TIER_NODES = {"PostgreSQL": "database", "Redis": "cache", "Kafka": "kafka"}
"""A tier's name in findings -> its node in the topology."""


def group_label(state: State, group_id: str) -> str:
    sg = state.groups.get(group_id)
    return f"{group_id} ({sg['GroupName']})" if sg else group_id


def _allowed_groups(state: State, tier: str) -> tuple[set[str], str]:
    """The groups of the services the declared topology lets reach `tier` (every app group
    for a stack without a `topology` output), and how to name them. A service's group is
    its ECS service's, or a group in the VPC tagged as that node (`coldreach:node`), which is
    how the cluster's pods' groups are known."""
    services = admitted_services(state.outputs, tier)
    if services is None:
        return state.app_groups, "app groups"
    groups = set().union(
        *(state.service_groups.get(s) or _tagged_groups(state, s) for s in services)
    )
    return groups, "groups of " + (", ".join(services) or "no service")


def _tagged_groups(state: State, node: str) -> set[str]:
    """The groups of a node that is no ECS service (the master password's rotation
    function), found by the `coldreach:node` tag the program puts on every group."""
    return {
        group_id
        for group_id, sg in state.groups.items()
        if {"Key": "coldreach:node", "Value": node} in (sg.get("Tags") or [])
    }


def check_tier_ingress(
    state: State, check: str, tier: str, group_ids: set[str], port: int, note: str = ""
) -> list[Finding]:
    """Every way into a data tier's groups is from a service the topology lets reach it,
    on the tier's port."""
    out: list[Finding] = []
    node = TIER_NODES[tier]
    # Without a topology output the ECS services' groups are all there is to compare with;
    # with one, a service's group may also be a pod's (found by its node tag).
    if not state.app_groups and admitted_services(state.outputs, node) is None:
        return [Finding(check, tier, FAIL, "no ECS service security groups found to compare")]
    allowed, allowed_label = _allowed_groups(state, node)
    for group_id in sorted(group_ids):
        sg = state.groups.get(group_id)
        label = group_label(state, group_id)
        if sg is None:
            out.append(Finding(check, group_id, FAIL, "security group not found in the VPC"))
            continue
        problems: list[str] = []
        admitted: set[str] = set()
        for p in sg.get("IpPermissions") or []:
            for kind, source in sources(p):
                if kind != "group":
                    problems.append(f"{port_range(p)} from {kind} {source}")
                elif source not in allowed:
                    problems.append(
                        f"{port_range(p)} from {source}, not one of the {allowed_label} "
                        f"(the declared topology's {node} admits only those)"
                    )
                elif str(p.get("IpProtocol")) == "-1" or (p.get("FromPort"), p.get("ToPort")) != (
                    port,
                    port,
                ):
                    problems.append(f"{port_range(p)} from {source} (only {port} allowed)")
                else:
                    admitted.add(source)
        if problems:
            out.append(Finding(check, label, FAIL, f"{tier}: " + "; ".join(problems) + note))
        elif not admitted:
            out.append(Finding(check, label, PASS, f"{tier}: admits nothing" + note))
        else:
            detail = f"{tier}: only {allowed_label} ({', '.join(sorted(admitted))}) on {port}"
            out.append(Finding(check, label, PASS, detail + note))
    if not group_ids:
        out.append(Finding(check, tier, FAIL, "no security groups found"))
    return out


def check_security_groups(state: State) -> list[Finding]:
    out = check_tier_ingress(state, "sg.db_ingress", "PostgreSQL", state.db_groups, DB_PORT)
    if state.phase >= 2:
        note = (
            " (groups found by their Redis-port rules: the API did not report the cluster's)"
            if state.redis_groups_inferred
            else ""
        )
        out += check_tier_ingress(
            state, "sg.redis_ingress", "Redis", state.redis_security_groups, REDIS_PORT, note
        )
    # Nothing but the ALB may be reached from the internet, and the ALB only on 80/443.
    for group_id, sg in sorted(state.groups.items()):
        label = group_label(state, group_id)
        open_rules = [
            p
            for p in sg.get("IpPermissions") or []
            if any(kind == "cidr" and is_world(src) for kind, src in sources(p))
        ]
        is_alb = group_id in state.alb_groups
        if not open_rules:
            continue
        if not is_alb:
            ports = ", ".join(port_range(p) for p in open_rules)
            out.append(Finding("sg.world_open", label, FAIL, f"open to the internet on {ports}"))
            continue
        bad = [
            p
            for p in open_rules
            if str(p.get("IpProtocol")) != "tcp"
            or p.get("FromPort") != p.get("ToPort")
            or p.get("FromPort") not in ALB_PORTS
        ]
        if bad:
            ports = ", ".join(port_range(p) for p in bad)
            detail = f"load balancer open to the internet on {ports} (only 80/443 allowed)"
            out.append(Finding("sg.world_open", label, FAIL, detail))
        else:
            ports = ", ".join(str(n) for n in sorted({int(p["FromPort"]) for p in open_rules}))
            out.append(
                Finding("sg.world_open", label, PASS, f"load balancer: internet on {ports} only")
            )
    if not state.alb_groups:
        out.append(Finding("sg.world_open", "load balancer", FAIL, "ALB of the url not found"))
    elif not any(f.check == "sg.world_open" and f.failed for f in out):
        out.append(
            Finding("sg.world_open", state.vpc_id, PASS, "no other group open to the internet")
        )
    return out


def private(
    check: str, name: str, public: bool, subnets: set[str], public_subnets: set[str]
) -> Finding:
    """Private: no public endpoint, and none of its subnets routed to an internet gateway."""
    exposed = sorted(subnets & public_subnets)
    if public:
        return Finding(check, name, FAIL, "publicly accessible")
    if exposed:
        detail = "in subnets routed to an internet gateway: " + ", ".join(exposed)
        return Finding(check, name, FAIL, detail)
    where = f"{len(subnets)} private subnets" if subnets else "no subnets reported"
    return Finding(check, name, PASS, f"not publicly accessible, {where}")
