"""Monthly cost of a stack, priced from the resources the program declares.

Prices and usage assumptions are data (`data/prices.yaml`), each price with its
source and date. Fixed costs come from the resources themselves (task sizes,
instance classes, node counts); usage-based ones (NAT data, ALB LCUs, logs,
SES mail, ...) from stated assumptions that a stack may override with
`cold-reach:costAssumptions`. Services that autoscale are priced at their
minimum (the baseline bill); in-use public IPv4 addresses are priced too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from coldreach import stacks
from coldreach.runtime import Deployment, Resource
from infra.config import SCHEMA, ConfigError
from policies.resource_types import TYPES

PRICES_FILE = Path(__file__).with_name("data") / "prices.yaml"
EKS_VERSIONS_FILE = Path(__file__).with_name("data") / "eks_versions.yaml"
EKS_SUPPORT_NOTICE = timedelta(days=90)
"""How long before the end of standard support the estimate starts warning."""
ASSUMPTIONS_KEY = "cold-reach:costAssumptions"


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    source: str
    date: str
    low_confidence: bool


@dataclass
class PriceTable:
    prices: dict[str, Price]
    assumptions: dict[str, float]
    hours: int

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> PriceTable:
        doc = yaml.safe_load(path.read_text())
        prices = {
            key: Price(
                key,
                float(p["usd"]),
                str(p["source"]),
                str(p["date"]),
                p.get("confidence") == "low",
            )
            for key, p in doc["prices"].items()
        }
        assumptions = {k: float(v) for k, v in doc["assumptions"].items()}
        return cls(prices, assumptions, int(doc["hours_per_month"]))

    def with_assumptions(self, overrides: dict[str, Any]) -> PriceTable:
        unknown = set(overrides) - set(self.assumptions)
        if unknown:
            raise ValueError(
                f"{ASSUMPTIONS_KEY}: unknown keys {sorted(unknown)}; "
                f"known: {', '.join(sorted(self.assumptions))}"
            )
        return PriceTable(
            self.prices,
            {**self.assumptions, **{k: float(v) for k, v in overrides.items()}},
            self.hours,
        )


@dataclass(frozen=True)
class Item:
    resource: str
    """The resource's logical name, or `stack` for usage spread over the stack."""
    type: str
    what: str
    quantity: float
    unit: str
    unit_usd: float | None
    """None when the price table has no entry: the item is listed, priced at 0."""
    monthly_usd: float
    usage_based: bool = False
    low_confidence: bool = False
    price_key: str = ""


@dataclass
class Estimate:
    stack: str
    phase: int
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What will change the bill without a config change (e.g. EKS extended support)."""

    @property
    def monthly_usd(self) -> float:
        return round(sum(i.monthly_usd for i in self.items), 2)

    @property
    def missing_prices(self) -> list[str]:
        return sorted({i.price_key for i in self.items if i.unit_usd is None})

    @property
    def warning(self) -> str | None:
        """Says what the total leaves out: an unknown price (often a misspelled instance
        class, `db.t3.medum`) is counted as $0, never silently."""
        unpriced = [i for i in self.items if i.unit_usd is None]
        if not unpriced:
            return None
        names = ", ".join(sorted({f"{i.resource} ({i.price_key})" for i in unpriced}))
        return (
            f"no price for {names}: counted as $0, so ${self.monthly_usd:,.2f} is a lower "
            "bound. Check the spelling of the instance class or node type, or add the "
            "price to coldreach/data/prices.yaml"
        )

    def by_resource(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for i in self.items:
            totals[i.resource] = totals.get(i.resource, 0.0) + i.monthly_usd
        return {k: round(v, 2) for k, v in totals.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "phase": self.phase,
            "monthly_usd": self.monthly_usd,
            "items": [{**asdict(i), "monthly_usd": round(i.monthly_usd, 2)} for i in self.items],
            "missing_prices": self.missing_prices,
            "warning": self.warning,
            "warnings": self.warnings,
        }


def eks_standard_support_ends(path: Path = EKS_VERSIONS_FILE) -> dict[str, date]:
    doc = yaml.safe_load(path.read_text())
    return {str(v): d for v, d in doc["standard_support_ends"].items()}


class Pricer:
    """Turns one deployment into cost items, one rule per resource type."""

    def __init__(
        self, deployment: Deployment, table: PriceTable, today: date | None = None
    ) -> None:
        self.d = deployment
        self.t = table
        self.hours = table.hours
        self.today = today or date.today()
        self.warnings: list[str] = []

    def item(
        self,
        r: Resource | None,
        what: str,
        key: str,
        quantity: float,
        unit: str,
        usage_based: bool = False,
    ) -> Item:
        price = self.t.prices.get(key)
        return Item(
            resource=r.name if r else "stack",
            type=r.type if r else "usage",
            what=what,
            quantity=quantity,
            unit=unit,
            unit_usd=price.usd if price else None,
            monthly_usd=quantity * price.usd if price else 0.0,
            usage_based=usage_based,
            low_confidence=price.low_confidence if price else False,
            price_key=key,
        )

    def ipv4(self, r: Resource, count: int, why: str) -> Item:
        return self.item(r, f"public IPv4 ({why})", "ipv4.hour", count * self.hours, "IP-hours")

    def baseline_tasks(self, service: Resource) -> int:
        name = service.out("name")
        for target in self.d.of_type("aws:appautoscaling/target:Target"):
            if str(target.get("resourceId", "")).endswith(f"/{name}"):
                return int(target.get("minCapacity"))
        return int(service.get("desiredCount") or 0)

    def rules(self) -> dict[str, Callable[[Resource], Iterator[Item]]]:
        """Pricing rule by name; the registry (policies/resource_types.py) says which
        rule bills which type."""
        return {
            "ecs_service": self.ecs_service,
            "rds_instance": self.rds_instance,
            "replication_group": self.replication_group,
            "nat_gateway": self.nat_gateway,
            "vpc_endpoint": self.vpc_endpoint,
            "eip": self.eip,
            "load_balancer": self.load_balancer,
            "web_acl": self.web_acl,
            "eks_cluster": self.eks_cluster,
            "eks_node_group": self.eks_node_group,
            "msk_cluster": self.msk_cluster,
            "secret": self.secret,
            "repository": self.repository,
            "kms_key": self.kms_key,
            "email_identity": self.email_identity,
        }

    # --- one function per priced type ----------------------------------------

    def ecs_service(self, r: Resource) -> Iterator[Item]:
        task = self.d.resolve(r.get("taskDefinition"))
        tasks = self.baseline_tasks(r)
        vcpu = int(task.get("cpu")) / 1024
        gb = int(task.get("memory")) / 1024
        platform = task.get("runtimePlatform") or {}
        arch = "arm" if platform.get("cpuArchitecture") == "ARM64" else "x86"
        yield self.item(
            r,
            f"Fargate {tasks} x {vcpu:g} vCPU",
            f"fargate.{arch}.vcpu_hour",
            tasks * vcpu * self.hours,
            "vCPU-hours",
        )
        yield self.item(
            r,
            f"Fargate {tasks} x {gb:g} GB",
            f"fargate.{arch}.gb_hour",
            tasks * gb * self.hours,
            "GB-hours",
        )
        if (r.get("networkConfiguration") or {}).get("assignPublicIp"):
            yield self.ipv4(r, tasks, "one per task")

    def rds_instance(self, r: Resource) -> Iterator[Item]:
        klass = r.get("instanceClass")
        multi_az = bool(r.get("multiAz"))
        deployment = "multi_az" if multi_az else "single_az"
        source = r.get("replicateSourceDb")
        storage_from = self.d.by_id(source) if source else r
        storage = int(storage_from.get("allocatedStorage") or 20)
        role = "replica" if source else "primary"
        yield self.item(
            r,
            f"RDS {klass} {role}, {deployment.replace('_', '-')}",
            f"rds.postgres.{klass}.{deployment}_hour",
            self.hours,
            "hours",
        )
        yield self.item(
            r, f"gp3 storage {storage} GB", f"rds.gp3.{deployment}_gb_month", storage, "GB-months"
        )

    def replication_group(self, r: Resource) -> Iterator[Item]:
        nodes = int(r.get("numCacheClusters") or 1)
        node = r.get("nodeType")
        yield self.item(
            r,
            f"ElastiCache {nodes} x {node}",
            f"elasticache.{node}.hour",
            nodes * self.hours,
            "node-hours",
        )

    def nat_gateway(self, r: Resource) -> Iterator[Item]:
        yield self.item(r, "NAT gateway", "nat.hour", self.hours, "hours")
        gb = self.t.assumptions["nat_gb_per_month"]
        yield self.item(r, "NAT data processed", "nat.gb", gb, "GB", usage_based=True)

    def vpc_endpoint(self, r: Resource) -> Iterator[Item]:
        # Billed per AZ it has a network interface in. Its traffic (a secret rotation a
        # month) is a few KB: the per-GB charge rounds to nothing and is left out.
        azs = len(r.get("subnetIds") or [])
        yield self.item(
            r,
            f"Interface endpoint ({r.get('serviceName')}) in {azs} AZs",
            "vpc_endpoint.interface.az_hour",
            azs * self.hours,
            "AZ-hours",
        )

    def eip(self, r: Resource) -> Iterator[Item]:
        yield self.ipv4(r, 1, "Elastic IP")

    def load_balancer(self, r: Resource) -> Iterator[Item]:
        yield self.item(r, "ALB", "alb.hour", self.hours, "hours")
        lcu = self.t.assumptions["alb_lcu"]
        yield self.item(
            r, "ALB capacity units", "alb.lcu_hour", lcu * self.hours, "LCU-hours", True
        )
        if not r.get("internal"):
            yield self.ipv4(r, len(r.get("subnets") or []), "one per AZ")

    def web_acl(self, r: Resource) -> Iterator[Item]:
        yield self.item(r, "WAF web ACL", "waf.web_acl_month", 1, "ACL-months")
        rules = len(r.get("rules") or [])
        yield self.item(r, f"WAF rules ({rules})", "waf.rule_month", rules, "rule-months")
        requests = self.t.assumptions["requests_per_month"] / 1e6
        yield self.item(
            r, "WAF requests inspected", "waf.million_requests", requests, "M requests", True
        )

    def eks_cluster(self, r: Resource) -> Iterator[Item]:
        """Standard support at $0.10/h; past its end, extended support bills $0.60/h unless the
        upgrade policy is STANDARD, in which case AWS upgrades the control plane instead."""
        version = str(r.get("version"))
        support = (r.get("upgradePolicy") or {}).get("supportType") or "EXTENDED"
        ends = eks_standard_support_ends().get(version)
        extended = False
        if ends is None:
            self.warnings.append(
                f"{r.name}: Kubernetes {version} is not in coldreach/data/eks_versions.yaml; "
                "its end of standard support is unknown"
            )
        elif ends <= self.today:
            extended = support == "EXTENDED"
            self.warnings.append(
                f"{r.name}: Kubernetes {version} left EKS standard support on {ends}: "
                + (
                    "extended support bills $0.60 instead of $0.10 per cluster-hour"
                    if extended
                    else "AWS upgrades the control plane (upgrade policy STANDARD); the node "
                    "group stays behind until cold-reach:eksVersion follows"
                )
            )
        elif ends - self.today <= EKS_SUPPORT_NOTICE:
            self.warnings.append(
                f"{r.name}: Kubernetes {version} leaves EKS standard support on {ends}; "
                + (
                    "then extended support bills $0.60 per cluster-hour"
                    if support == "EXTENDED"
                    else "then AWS upgrades the control plane"
                )
            )
        if extended:
            yield self.item(
                r,
                f"EKS control plane, extended support ({version})",
                "eks.cluster_hour_extended",
                self.hours,
                "hours",
            )
        else:
            yield self.item(r, "EKS control plane", "eks.cluster_hour", self.hours, "hours")

    def eks_node_group(self, r: Resource) -> Iterator[Item]:
        size = int((r.get("scalingConfig") or {}).get("desiredSize") or 0)
        kind = (r.get("instanceTypes") or ["t3.medium"])[0]
        yield self.item(
            r, f"EC2 {size} x {kind}", f"ec2.{kind}.hour", size * self.hours, "instance-hours"
        )
        template_id = (r.get("launchTemplate") or {}).get("id")
        gb = int(r.get("diskSize") or 20)
        if template_id:
            template = self.d.by_id(template_id)
            for mapping in template.get("blockDeviceMappings") or []:
                gb = int((mapping.get("ebs") or {}).get("volumeSize") or gb)
        yield self.item(
            r, f"EBS gp3 root {size} x {gb} GB", "ebs.gp3.gb_month", size * gb, "GB-months"
        )

    def msk_cluster(self, r: Resource) -> Iterator[Item]:
        brokers = int(r.get("numberOfBrokerNodes") or 0)
        info = r.get("brokerNodeGroupInfo") or {}
        kind = info.get("instanceType")
        ebs = ((info.get("storageInfo") or {}).get("ebsStorageInfo") or {}).get("volumeSize") or 0
        yield self.item(
            r,
            f"MSK {brokers} x {kind}",
            f"msk.{kind}.broker_hour",
            brokers * self.hours,
            "broker-hours",
        )
        yield self.item(
            r,
            f"MSK storage {brokers} x {ebs} GB",
            "msk.storage_gb_month",
            brokers * ebs,
            "GB-months",
        )

    def secret(self, r: Resource) -> Iterator[Item]:
        yield self.item(r, "secret", "secretsmanager.secret_month", 1, "secret-months")

    def kms_key(self, r: Resource) -> Iterator[Item]:
        yield self.item(r, "customer managed key", "kms.key_month", 1, "key-months")

    def repository(self, r: Resource) -> Iterator[Item]:
        gb = self.t.assumptions["ecr_gb"]
        yield self.item(r, "image storage", "ecr.gb_month", gb, "GB-months", usage_based=True)

    def email_identity(self, r: Resource) -> Iterator[Item]:
        emails = self.t.assumptions["emails_per_month"]
        yield self.item(r, "SES mail", "ses.per_1000", emails / 1000, "1,000 recipients", True)

    def stack_usage(self) -> Iterator[Item]:
        a = self.t.assumptions
        if self.d.of_type("aws:cloudwatch/logGroup:LogGroup"):
            yield self.item(
                None,
                "CloudWatch Logs ingested",
                "logs.ingest_gb",
                a["logs_gb_per_month"],
                "GB",
                usage_based=True,
            )
        if self.d.of_type("aws:secretsmanager/secret:Secret"):
            yield self.item(
                None,
                "Secrets Manager API calls",
                "secretsmanager.per_10k_calls",
                a["secret_api_calls_per_month"] / 10_000,
                "10k calls",
                usage_based=True,
            )

    def items(self) -> list[Item]:
        rules = self.rules()
        found: list[Item] = []
        for r in sorted(self.d.resources, key=lambda r: r.urn):
            known = TYPES.get(r.type)
            rule = rules[known.cost] if known and known.cost else None
            if rule is not None:
                found += list(rule(r))
        return found + list(self.stack_usage())


def assumptions_of(stack: stacks.StackConfig) -> dict[str, Any]:
    """The stack's usage assumptions, read by the key's declaration (infra/config/keys.py)."""
    raw = stack.config.get(ASSUMPTIONS_KEY)
    if not raw:
        return {}
    try:
        return SCHEMA.read(stack.stack, {"costAssumptions": raw}.get)["costAssumptions"]
    except ConfigError as err:
        raise stacks.StackError(str(err)) from None


def estimate(
    deployment: Deployment, table: PriceTable | None = None, today: date | None = None
) -> Estimate:
    table = table or PriceTable.load()
    phase = int(deployment.output("phase"))
    pricer = Pricer(deployment, table, today)
    return Estimate(deployment.stack, phase, pricer.items(), pricer.warnings)


def prices_for(stack: str, root: Path | None = None) -> PriceTable:
    """The price table with `stack`'s own usage assumptions (`cold-reach:costAssumptions`)."""
    config = stacks.load(root or stacks.find_root(), stack)
    try:
        return PriceTable.load().with_assumptions(assumptions_of(config))
    except ValueError as err:
        raise stacks.StackError(str(err)) from None


def estimate_for(deployment: Deployment) -> Estimate:
    """Prices an evaluated stack with its stack file's usage assumptions."""
    return estimate(deployment, prices_for(deployment.stack))
