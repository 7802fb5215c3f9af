"""`coldreach verify`: boto3 checks of a deployed stack's security and health.

It starts from the stack outputs (`pulumi stack output --json`, or a file of
the same shape) and discovers the rest through the AWS APIs: the services'
security groups from ECS, the load balancer from the URL, the database
groups from RDS, every security group, RDS instance and Redis group in the
stack's VPC. Each check yields rows of (check, resource, result, detail);
one failed row makes the command exit 1.

Against an emulator (`--endpoint-url`), two checks read what the emulator can
report: ECS starts no containers there, so a service is at its desired count
when every desired task is accounted for as running or pending; and no target
is ever registered, so target health is skipped, not passed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from boto3.session import Session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach import stacks
from coldreach.graph import WORLD
from coldreach.runtime.moto_backend import EMULATOR_CREDENTIALS

DB_PORT = 5432
REDIS_PORT = 6379
ALB_PORTS = frozenset({80, 443})
MIN_BACKUP_DAYS = 7

PASS, FAIL, SKIP = "pass", "FAIL", "skip"


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str
    result: str
    """`pass`, `FAIL` or `skip` (not applicable, or not reported by the API)."""
    detail: str

    @property
    def failed(self) -> bool:
        return self.result == FAIL


def _verdict(
    check: str, resource: str, ok: bool, detail: str, failed_detail: str | None = None
) -> Finding:
    """`pass` with `detail` if ok, else `FAIL` with `failed_detail` (or the same detail)."""
    if ok:
        return Finding(check, resource, PASS, detail)
    return Finding(check, resource, FAIL, detail if failed_detail is None else failed_detail)


def _fail(message: str) -> NoReturn:
    from coldreach.cli import UserError  # cli imports this module

    raise UserError(message)


# --- where the outputs and the API come from ---------------------------------------


def outputs_from_pulumi(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets --stack STACK`."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        _fail(
            "the pulumi CLI is not on PATH, so the outputs of stack "
            f"{stack!r} cannot be read; pass them as a file with --outputs FILE "
            "(e.g. from `coldreach local up --outputs FILE`)"
        )
    done = subprocess.run(
        [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        _fail(f"pulumi stack output --stack {stack} failed: {done.stderr.strip()}")
    return _as_outputs(done.stdout, f"pulumi stack output --stack {stack}")


def outputs_from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        _fail(f"cannot read the outputs file {path}: {err.strerror}")
    return _as_outputs(text, str(path))


def _as_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        _fail(f"{source} is not JSON: {err}")
    if not isinstance(doc, dict):
        _fail(f"{source}: expected a JSON object of stack outputs")
    missing = [k for k in ("vpc_id", "cluster_name", "db_identifier") if not doc.get(k)]
    if missing:
        _fail(f"{source}: missing stack outputs {', '.join(missing)}")
    return doc


def region_of(outputs: dict[str, Any], explicit: str | None, stack: str | None) -> str:
    """--region, else the stack's aws:region, else the region in the outputs' ARNs,
    else the environment."""
    if explicit:
        return explicit
    if stack:
        try:
            configured = stacks.load(stacks.find_root(), stack).region
        except stacks.StackError:
            configured = None
        if configured:
            return configured
    for value in outputs.values():
        match = re.match(r"^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):\d{12}:", str(value))
        if match and match.group(1):
            return match.group(1)
    env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if env:
        return env
    _fail("no region: pass --region")


class Aws:
    """boto3 clients for one region, optionally against an emulator's endpoint."""

    def __init__(
        self, region: str, endpoint_url: str | None = None, *, emulator: bool | None = None
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.emulator = endpoint_url is not None if emulator is None else emulator
        """True for moto (a server, or in-process under `mock_aws`): see the module doc."""
        credentials: dict[str, str] = {}
        if endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
            # An emulator accepts any key; never go looking for real ones for it.
            credentials = EMULATOR_CREDENTIALS
        self._session = Session(region_name=region, **credentials)
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,  # pyright: ignore[reportArgumentType]
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._clients[service]


# --- what is deployed ----------------------------------------------------------------------


@dataclass
class _State:
    """The stack's resources as the APIs report them."""

    outputs: dict[str, Any]
    phase: int
    vpc_id: str
    services: dict[str, dict[str, Any]]
    app_groups: set[str]
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


def _paginate(client: Any, method: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    if client.can_paginate(method):
        items: list[dict[str, Any]] = []
        for page in client.get_paginator(method).paginate(**kwargs):
            items += page.get(key, [])
        return items
    return getattr(client, method)(**kwargs).get(key, [])


def _discover(aws: Aws, outputs: dict[str, Any]) -> _State:
    vpc_id = str(outputs["vpc_id"])
    phase = int(outputs.get("phase") or 1)

    names = [outputs.get("web_service_name"), outputs.get("worker_service_name")]
    names = [str(n) for n in names if n]
    services: dict[str, dict[str, Any]] = {}
    if names:
        described = aws("ecs").describe_services(
            cluster=str(outputs["cluster_name"]), services=names
        )
        services = {s["serviceName"]: s for s in described.get("services", [])}
    app_groups: set[str] = set()
    for s in services.values():
        net = (s.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        app_groups |= set(net.get("securityGroups") or [])

    elb = aws("elbv2")
    host = re.sub(r"^[a-z]+://", "", str(outputs.get("url") or "")).split("/")[0].lower()
    load_balancer = next(
        (
            lb
            for lb in _paginate(elb, "describe_load_balancers", "LoadBalancers")
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
        for g in _paginate(
            ec2,
            "describe_security_groups",
            "SecurityGroups",
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
        )
    }

    db_instances: dict[str, dict[str, Any]] = {}
    for db in _paginate(aws("rds"), "describe_db_instances", "DBInstances"):
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
    return _State(
        outputs=outputs,
        phase=phase,
        vpc_id=vpc_id,
        services=services,
        app_groups=app_groups,
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
    tables = _paginate(
        ec2,
        "describe_route_tables",
        "RouteTables",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
    )
    subnets = {
        s["SubnetId"]
        for s in _paginate(
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
        for c in _paginate(elasticache, "describe_cache_clusters", "CacheClusters")
    }
    subnet_groups = {
        g["CacheSubnetGroupName"]: g
        for g in _paginate(elasticache, "describe_cache_subnet_groups", "CacheSubnetGroups")
    }
    subnet_vpcs = {name: g.get("VpcId") for name, g in subnet_groups.items()}
    subnets: dict[str, set[str]] = {}
    endpoint = outputs.get("redis_endpoint")
    found: list[dict[str, Any]] = []
    security: set[str] = set()
    for group in _paginate(elasticache, "describe_replication_groups", "ReplicationGroups"):
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
            if any(_covers(p, REDIS_PORT) for p in sg.get("IpPermissions") or []):
                security.add(group_id)
    return found, security, inferred, subnets


# --- the checks ----------------------------------------------------------------------------------


def _covers(permission: dict[str, Any], port: int) -> bool:
    if str(permission.get("IpProtocol")) == "-1":
        return True
    return int(permission.get("FromPort", 0)) <= port <= int(permission.get("ToPort", 65535))


def _ports(permission: dict[str, Any]) -> str:
    if str(permission.get("IpProtocol")) == "-1":
        return "all traffic"
    low, high = permission.get("FromPort"), permission.get("ToPort")
    return f"{permission.get('IpProtocol')} {low}" if low == high else f"{low}-{high}"


def _sources(permission: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(kind, value) for every source of one permission: cidr, group or prefix list."""
    for r in permission.get("IpRanges") or []:
        yield "cidr", r["CidrIp"]
    for r in permission.get("Ipv6Ranges") or []:
        yield "cidr", r["CidrIpv6"]
    for r in permission.get("UserIdGroupPairs") or []:
        yield "group", r["GroupId"]
    for r in permission.get("PrefixListIds") or []:
        yield "prefix-list", r["PrefixListId"]


def _group_label(state: _State, group_id: str) -> str:
    sg = state.groups.get(group_id)
    return f"{group_id} ({sg['GroupName']})" if sg else group_id


def check_rds(state: _State) -> list[Finding]:
    out: list[Finding] = []
    primary_id = state.outputs.get("db_identifier")
    if primary_id not in state.db_instances:
        out.append(Finding("rds.exists", str(primary_id), FAIL, "primary instance not found"))
    for ident, db in sorted(state.db_instances.items()):
        role = "replica" if db.get("ReadReplicaSourceDBInstanceIdentifier") else "primary"
        name = f"{ident} ({role})"
        out.append(_private("rds.private", name, bool(db.get("PubliclyAccessible")),
                            _db_subnets(db), state.public_subnets))  # fmt: skip
        out.append(
            _verdict(
                "rds.encrypted",
                name,
                bool(db.get("StorageEncrypted")),
                "storage encrypted",
                "storage NOT encrypted",
            )
        )
        days = int(db.get("BackupRetentionPeriod") or 0)
        out.append(
            _verdict(
                "rds.backups",
                name,
                days >= MIN_BACKUP_DAYS,
                f"backups kept {days} days (>= {MIN_BACKUP_DAYS} required)",
            )
        )
        out.append(
            _verdict(
                "rds.deletion_protection",
                name,
                bool(db.get("DeletionProtection")),
                "deletion protection on",
                "deletion protection off",
            )
        )
    if state.phase >= 2:
        out.append(_check_replica(state, str(primary_id)))
    return out


def _db_subnets(db: dict[str, Any]) -> set[str]:
    return {s["SubnetIdentifier"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets") or []}


def _private(
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


def _check_replica(state: _State, primary_id: str) -> Finding:
    replica_id = state.outputs.get("db_replica_identifier")
    if not replica_id:
        return Finding("rds.replica", "(none)", FAIL, "phase 2 needs a read replica; no output")
    db = state.db_instances.get(str(replica_id))
    if db is None:
        return Finding("rds.replica", str(replica_id), FAIL, "read replica not found")
    source = str(db.get("ReadReplicaSourceDBInstanceIdentifier") or "")
    if source.rsplit(":", 1)[-1] != primary_id:
        detail = f"replicates {source or 'nothing'}, not the primary {primary_id}"
        return Finding("rds.replica", str(replica_id), FAIL, detail)
    return Finding("rds.replica", str(replica_id), PASS, f"read replica of {primary_id}")


def _check_tier_ingress(
    state: _State, check: str, tier: str, group_ids: set[str], port: int, note: str = ""
) -> list[Finding]:
    """Every way into a data tier's groups is from an app group, on the tier's port."""
    out: list[Finding] = []
    if not state.app_groups:
        return [Finding(check, tier, FAIL, "no ECS service security groups found to compare")]
    for group_id in sorted(group_ids):
        sg = state.groups.get(group_id)
        label = _group_label(state, group_id)
        if sg is None:
            out.append(Finding(check, group_id, FAIL, "security group not found in the VPC"))
            continue
        problems: list[str] = []
        admitted: set[str] = set()
        for p in sg.get("IpPermissions") or []:
            for kind, source in _sources(p):
                if kind != "group":
                    problems.append(f"{_ports(p)} from {kind} {source}")
                elif source not in state.app_groups:
                    problems.append(f"{_ports(p)} from non-app group {source}")
                elif str(p.get("IpProtocol")) == "-1" or (p.get("FromPort"), p.get("ToPort")) != (
                    port,
                    port,
                ):
                    problems.append(f"{_ports(p)} from {source} (only {port} allowed)")
                else:
                    admitted.add(source)
        if problems:
            out.append(Finding(check, label, FAIL, f"{tier}: " + "; ".join(problems) + note))
        elif not admitted:
            out.append(Finding(check, label, PASS, f"{tier}: admits nothing" + note))
        else:
            detail = f"{tier}: only app groups {', '.join(sorted(admitted))} on {port}"
            out.append(Finding(check, label, PASS, detail + note))
    if not group_ids:
        out.append(Finding(check, tier, FAIL, "no security groups found"))
    return out


def check_security_groups(state: _State) -> list[Finding]:
    out = _check_tier_ingress(state, "sg.db_ingress", "PostgreSQL", state.db_groups, DB_PORT)
    if state.phase >= 2:
        note = (
            " (groups found by their Redis-port rules: the API did not report the cluster's)"
            if state.redis_groups_inferred
            else ""
        )
        out += _check_tier_ingress(
            state, "sg.redis_ingress", "Redis", state.redis_security_groups, REDIS_PORT, note
        )
    # Nothing but the ALB may be reached from the internet, and the ALB only on 80/443.
    for group_id, sg in sorted(state.groups.items()):
        label = _group_label(state, group_id)
        open_rules = [
            p
            for p in sg.get("IpPermissions") or []
            if any(kind == "cidr" and _is_world(src) for kind, src in _sources(p))
        ]
        is_alb = group_id in state.alb_groups
        if not open_rules:
            continue
        if not is_alb:
            ports = ", ".join(_ports(p) for p in open_rules)
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
            ports = ", ".join(_ports(p) for p in bad)
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


def _is_world(cidr: str) -> bool:
    if cidr in WORLD:
        return True
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def check_redis(state: _State) -> list[Finding]:
    if state.phase < 2:
        return []
    if not state.redis_groups:
        return [Finding("redis.tls", str(state.outputs.get("redis_endpoint")), FAIL, "not found")]
    out: list[Finding] = []
    for group in state.redis_groups:
        name = group["ReplicationGroupId"]
        tls = bool(group.get("TransitEncryptionEnabled"))
        mode = group.get("TransitEncryptionMode")
        auth = bool(group.get("AuthTokenEnabled")) or bool(group.get("UserGroupIds"))
        ok = tls and mode in (None, "required") and auth
        detail = (
            f"TLS {'on' if tls else 'OFF'}"
            + (f" ({mode})" if tls and mode else "")
            + f", AUTH {'on' if auth else 'OFF'}"
        )
        out.append(_verdict("redis.tls", name, ok, detail))
        subnets = state.redis_subnets.get(name, set())
        out.append(_private("redis.private", name, False, subnets, state.public_subnets))
        out.append(
            _verdict(
                "redis.encrypted",
                name,
                bool(group.get("AtRestEncryptionEnabled")),
                "encrypted at rest",
                "NOT encrypted at rest",
            )
        )
    return out


def check_services(state: _State, aws: Aws) -> list[Finding]:
    out: list[Finding] = []
    expected = [state.outputs.get("web_service_name")]
    if state.phase >= 2:
        expected.append(state.outputs.get("worker_service_name"))
    scaling = _scalable_targets(aws, str(state.outputs["cluster_name"]))
    for name in [str(n) for n in expected if n]:
        s = state.services.get(name)
        if s is None or s.get("status") != "ACTIVE":
            status = s.get("status") if s else "not found"
            out.append(Finding("ecs.desired_count", name, FAIL, f"service {status}"))
            continue
        out.append(_desired_count(s, scaling.get(name), aws.emulator))
        net = (s.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        public = net.get("assignPublicIp") == "ENABLED"
        if not public:
            out.append(Finding("ecs.public_ip", name, PASS, "tasks get no public IP"))
        elif state.phase < 2:
            out.append(_phase1_public_ip(state, name, net.get("securityGroups") or []))
        else:
            out.append(Finding("ecs.public_ip", name, FAIL, "tasks get a public IP in phase 2"))
    return out


def _phase1_public_ip(state: _State, name: str, group_ids: list[str]) -> Finding:
    """Phase 1 has no NAT, so tasks take a public IP (docs/adr/0001); that is only
    acceptable while nothing but the load balancer can reach them."""
    others = sorted(
        f"{_ports(p)} from {kind} {source}"
        for group_id in group_ids
        for p in (state.groups.get(group_id) or {}).get("IpPermissions") or []
        for kind, source in _sources(p)
        if kind != "group" or source not in state.alb_groups
    )
    if others:
        detail = "public IP (phase 1) and reachable other than from the ALB: " + "; ".join(others)
        return Finding("ecs.public_ip", name, FAIL, detail)
    detail = "public IP, allowed in phase 1 (no NAT, docs/adr/0001): only the ALB gets in"
    return Finding("ecs.public_ip", name, PASS, detail)


def _scalable_targets(aws: Aws, cluster: str) -> dict[str, dict[str, Any]]:
    try:
        targets = _paginate(
            aws("application-autoscaling"),
            "describe_scalable_targets",
            "ScalableTargets",
            ServiceNamespace="ecs",
        )
    except ClientError:
        return {}
    prefix = f"service/{cluster}/"
    return {
        t["ResourceId"][len(prefix) :]: t for t in targets if t["ResourceId"].startswith(prefix)
    }


def _desired_count(
    service: dict[str, Any], target: dict[str, Any] | None, emulator: bool
) -> Finding:
    name = service["serviceName"]
    desired = int(service.get("desiredCount") or 0)
    running = int(service.get("runningCount") or 0)
    pending = int(service.get("pendingCount") or 0)
    counts = f"desired {desired}, running {running}, pending {pending}"
    if desired < 1:
        return Finding("ecs.desired_count", name, FAIL, f"{counts}: nothing scheduled")
    if target is not None:
        low, high = int(target["MinCapacity"]), int(target["MaxCapacity"])
        counts += f", autoscaling {low}-{high}"
        if not low <= desired <= high:
            return Finding("ecs.desired_count", name, FAIL, f"{counts}: outside the bounds")
    if running == desired:
        return Finding("ecs.desired_count", name, PASS, counts)
    if emulator and running + pending == desired:
        detail = f"{counts} (emulator: tasks scheduled, no containers start)"
        return Finding("ecs.desired_count", name, PASS, detail)
    return Finding("ecs.desired_count", name, FAIL, f"{counts}: not at the desired count")


def check_targets(state: _State, aws: Aws) -> list[Finding]:
    if state.load_balancer is None:
        return [Finding("alb.target_health", str(state.outputs.get("url")), FAIL, "ALB not found")]
    out: list[Finding] = []
    for tg in state.target_groups:
        name = tg.get("TargetGroupName") or tg["TargetGroupArn"]
        described = aws("elbv2").describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
        health = described.get("TargetHealthDescriptions") or []
        if not health:
            why = "the emulator runs no tasks" if aws.emulator else "none registered yet"
            out.append(Finding("alb.target_health", name, SKIP, f"no targets ({why})"))
            continue
        states = [h.get("TargetHealth", {}).get("State", "unknown") for h in health]
        healthy = states.count("healthy")
        detail = f"{healthy}/{len(states)} healthy" + (
            "" if healthy == len(states) else f" ({', '.join(sorted(set(states)))})"
        )
        out.append(_verdict("alb.target_health", name, healthy == len(states), detail))
    return out


Check = Callable[[_State, Aws], list[Finding]]
CHECKS: list[Check] = [
    lambda s, _a: check_rds(s),
    lambda s, _a: check_security_groups(s),
    lambda s, _a: check_redis(s),
    check_services,
    check_targets,
]


def verify(outputs: dict[str, Any], aws: Aws) -> list[Finding]:
    """Runs every check against the deployment the outputs describe."""
    state = _discover(aws, outputs)
    findings: list[Finding] = []
    for check in CHECKS:
        findings += check(state, aws)
    return findings


# --- the command ------------------------------------------------------------------------------


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="check a deployed stack with boto3 (private data tiers, SGs, TLS, services)",
        description=(
            "Reads the stack outputs and checks the deployed state through the AWS APIs: "
            "RDS and Redis private (no public access, no subnet routed to the internet), RDS "
            "encrypted, backed up and protected, the replica's source; data-tier "
            "groups admit only the app's groups; only the ALB is open to the internet, on 80/443; "
            "Redis TLS; ECS services at their desired count; ALB target health. "
            "Exits 1 when any check fails."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="read outputs with `pulumi stack output --json`")
    source.add_argument("--outputs", type=Path, metavar="FILE", help="read outputs from FILE")
    p.add_argument("--endpoint-url", metavar="URL", help="an emulator (e.g. coldreach local)")
    p.add_argument("--region", help="AWS region (default: the stack's, or the outputs' ARNs)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    outputs = outputs_from_file(args.outputs) if args.outputs else outputs_from_pulumi(args.stack)
    aws = Aws(region_of(outputs, args.region, args.stack), args.endpoint_url)
    where = aws.endpoint_url or f"AWS {aws.region}"
    try:
        if args.json:
            findings = verify(outputs, aws)
        else:
            with err.status(f"Checking the deployed stack ({where})..."):
                findings = verify(outputs, aws)
    except NoCredentialsError:
        _fail("no AWS credentials found (environment, profile or instance role)")
    except (BotoCoreError, ClientError) as error:
        _fail(f"{where}: {error}")
    failed = sum(f.failed for f in findings)
    if args.json:
        doc = {"ok": failed == 0, "failed": failed, "findings": [asdict(f) for f in findings]}
        print(json.dumps(doc, indent=2))
    else:
        render(findings, out, title=f"coldreach verify: {where}")
    return 1 if failed else 0


def render(findings: list[Finding], console: Console, title: str = "coldreach verify") -> None:
    table = Table(title=escape(title))
    table.add_column("check", no_wrap=True)
    table.add_column("resource", overflow="fold")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    styles = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
    for f in findings:
        result = f"[{styles[f.result]}]{f.result}[/]"
        table.add_row(escape(f.check), escape(f.resource), result, escape(f.detail))
    console.print(table)
    failed = sum(x.failed for x in findings)
    passed = sum(x.result == PASS for x in findings)
    skipped = sum(x.result == SKIP for x in findings)
    summary = f"{passed} passed, {failed} failed, {skipped} skipped"
    console.print(f"[bold red]{summary}[/]" if failed else f"[green]{summary}[/]")
