"""What is deployed: the stack's resources found through the AWS APIs from its outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coldreach.verify.aws import Aws, paginate
from coldreach.verify.permissions import REDIS_PORT, covers


@dataclass
class State:
    """The stack's resources as the APIs report them."""

    outputs: dict[str, Any]
    phase: int
    vpc_id: str
    services: dict[str, dict[str, Any]]
    app_groups: set[str]
    service_groups: dict[str, set[str]]
    """The topology's service name -> the security groups its ECS service runs in."""
    load_balancer: dict[str, Any] | None
    alb_groups: set[str]
    target_groups: list[dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    db_instances: dict[str, dict[str, Any]]
    db_groups: set[str]
    redis_groups: list[dict[str, Any]]
    redis_security_groups: set[str]
    redis_groups_inferred: bool
    public_subnets: set[str]
    """Subnets of the VPC whose route table sends traffic to an internet gateway."""
    redis_subnets: dict[str, set[str]]
    """Replication group id -> the subnets of its cache subnet group."""


def declared_services(outputs: dict[str, Any]) -> list[str]:
    """The services of the stack's `topology` output (web and worker for a stack deployed
    before the output existed)."""
    topology = outputs.get("topology")
    if isinstance(topology, dict) and topology.get("services"):
        return list(topology["services"])
    return [s for s in ("web", "worker") if outputs.get(f"{s}_service_name")]


def admitted(outputs: dict[str, Any], tier: str) -> list[str] | None:
    """The services the topology lets reach `tier`; None without a topology output."""
    topology = outputs.get("topology")
    if not isinstance(topology, dict):
        return None
    return list((topology.get("tiers") or {}).get(tier, {}).get("admits") or [])


def discover(aws: Aws, outputs: dict[str, Any]) -> State:
    vpc_id = str(outputs["vpc_id"])
    phase = int(outputs.get("phase") or 1)

    # The services the stack declares (its `topology` output), each by its ECS name.
    declared = declared_services(outputs)
    by_ecs_name = {str(outputs[f"{s}_service_name"]): s for s in declared
                   if outputs.get(f"{s}_service_name")}  # fmt: skip
    services: dict[str, dict[str, Any]] = {}
    if by_ecs_name:
        described = aws("ecs").describe_services(
            cluster=str(outputs["cluster_name"]), services=list(by_ecs_name)
        )
        services = {s["serviceName"]: s for s in described.get("services", [])}
    service_groups: dict[str, set[str]] = {}
    for ecs_name, s in services.items():
        net = (s.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        service_groups[by_ecs_name[ecs_name]] = set(net.get("securityGroups") or [])
    app_groups = set().union(*service_groups.values()) if service_groups else set()

    elb = aws("elbv2")
    host = re.sub(r"^[a-z]+://", "", str(outputs.get("url") or "")).split("/")[0].lower()
    load_balancer = next(
        (
            lb
            for lb in paginate(elb, "describe_load_balancers", "LoadBalancers")
            if lb.get("DNSName", "").lower() == host and host
        ),
        None,
    )
    alb_groups = set(load_balancer.get("SecurityGroups") or []) if load_balancer else set()
    target_groups = (
        elb.describe_target_groups(LoadBalancerArn=load_balancer["LoadBalancerArn"])["TargetGroups"]
        if load_balancer
        else []
    )

    ec2 = aws("ec2")
    groups = {
        g["GroupId"]: g
        for g in paginate(
            ec2,
            "describe_security_groups",
            "SecurityGroups",
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
        )
    }

    db_instances: dict[str, dict[str, Any]] = {}
    for db in paginate(aws("rds"), "describe_db_instances", "DBInstances"):
        in_vpc = (db.get("DBSubnetGroup") or {}).get("VpcId") == vpc_id
        named = db["DBInstanceIdentifier"] in (
            outputs.get("db_identifier"),
            outputs.get("db_replica_identifier"),
        )
        if in_vpc or named:
            db_instances[db["DBInstanceIdentifier"]] = db
    db_groups = {
        g["VpcSecurityGroupId"]
        for db in db_instances.values()
        for g in db.get("VpcSecurityGroups") or []
    }

    known = app_groups | alb_groups | db_groups
    redis_groups, redis_sgs, inferred, redis_subnets = _redis(aws, outputs, vpc_id, groups, known)
    return State(
        outputs=outputs,
        phase=phase,
        vpc_id=vpc_id,
        services=services,
        app_groups=app_groups,
        service_groups=service_groups,
        load_balancer=load_balancer,
        alb_groups=alb_groups,
        target_groups=target_groups,
        groups=groups,
        db_instances=db_instances,
        db_groups=db_groups,
        redis_groups=redis_groups,
        redis_security_groups=redis_sgs,
        redis_groups_inferred=inferred,
        public_subnets=_public_subnets(ec2, vpc_id),
        redis_subnets=redis_subnets,
    )


def _public_subnets(ec2: Any, vpc_id: str) -> set[str]:
    """Subnets whose route table (explicitly associated, else the VPC's main one) has a
    route to an internet gateway: anything placed there can be given a public address."""
    tables = paginate(
        ec2,
        "describe_route_tables",
        "RouteTables",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
    )
    subnets = {
        s["SubnetId"]
        for s in paginate(
            ec2, "describe_subnets", "Subnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
        )
    }

    def to_internet(table: dict[str, Any]) -> bool:
        return any(
            str(r.get("GatewayId", "")).startswith("igw-") for r in table.get("Routes") or []
        )

    main_public = any(
        to_internet(t) for t in tables if any(a.get("Main") for a in t.get("Associations") or [])
    )
    associated: dict[str, bool] = {}
    for t in tables:
        for a in t.get("Associations") or []:
            if a.get("SubnetId"):
                associated[a["SubnetId"]] = to_internet(t)
    return {s for s in subnets if associated.get(s, main_public)}


def _redis(
    aws: Aws,
    outputs: dict[str, Any],
    vpc_id: str,
    groups: dict[str, dict[str, Any]],
    known: set[str],
) -> tuple[list[dict[str, Any]], set[str], bool, dict[str, set[str]]]:
    """The stack's Redis replication groups and the security groups guarding them.

    AWS reports a group's security groups on its member cache clusters. Where
    the API leaves them out (moto does), the groups in the VPC holding a rule
    on the Redis port stand in for them (except the groups already known to belong to
    the services, the ALB or RDS), and the finding says so.
    """
    elasticache = aws("elasticache")
    clusters = {
        c["CacheClusterId"]: c
        for c in paginate(elasticache, "describe_cache_clusters", "CacheClusters")
    }
    subnet_groups = {
        g["CacheSubnetGroupName"]: g
        for g in paginate(elasticache, "describe_cache_subnet_groups", "CacheSubnetGroups")
    }
    subnet_vpcs = {name: g.get("VpcId") for name, g in subnet_groups.items()}
    subnets: dict[str, set[str]] = {}
    endpoint = outputs.get("redis_endpoint")
    found: list[dict[str, Any]] = []
    security: set[str] = set()
    for group in paginate(elasticache, "describe_replication_groups", "ReplicationGroups"):
        if group.get("Status") in ("deleting", "deleted"):
            continue  # on its way out: nothing connects to it any more
        members = [clusters[m] for m in group.get("MemberClusters") or [] if m in clusters]
        in_vpc = any(subnet_vpcs.get(m.get("CacheSubnetGroupName")) == vpc_id for m in members)
        addresses = {
            (ng.get("PrimaryEndpoint") or {}).get("Address") for ng in group.get("NodeGroups") or []
        }
        if in_vpc or (endpoint and endpoint in addresses):
            found.append(group)
            subnets[group["ReplicationGroupId"]] = set()
            for m in members:
                security |= {g["SecurityGroupId"] for g in m.get("SecurityGroups") or []}
                subnet_group = subnet_groups.get(m.get("CacheSubnetGroupName")) or {}
                subnets[group["ReplicationGroupId"]] |= {
                    sn["SubnetIdentifier"] for sn in subnet_group.get("Subnets") or []
                }
    inferred = False
    if found and not security:
        inferred = True
        for group_id, sg in groups.items():
            if group_id in known:
                continue
            if any(covers(p, REDIS_PORT) for p in sg.get("IpPermissions") or []):
                security.add(group_id)
    return found, security, inferred, subnets
