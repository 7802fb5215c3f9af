"""The validated settings of one stack, grouped as the keys are, and the checks that span keys."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra import capacity, phases, topology
from infra.config.keys import FARGATE_SIZES, SCHEMA
from infra.config.schema import ConfigError

MIN_PUBLIC_PREFIX = 16
"""The widest network eksPublicAccessCidrs accepts: a runner fleet's range, not the internet."""

# Regions where every service the three phases use (ECS Fargate, RDS, ElastiCache,
# SES v2, EKS, MSK) is offered.
REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "sa-east-1",
    }
)


@dataclass(frozen=True)
class NetworkSettings:
    vpc_cidr: str
    nat_per_az: bool


@dataclass(frozen=True)
class DatabaseSettings:
    instance_class: str
    replica_instance_class: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    backup_retention_days: int
    multi_az: bool
    engine_version: str
    iam_auth: str = "on"
    """The rollout stage of database access without static passwords (see the properties)."""

    @property
    def roles(self) -> bool:
        """The one-off `bootstrap` and `migrate` task definitions exist (stage roles and on)."""
        return self.iam_auth != "off"

    @property
    def services_on_iam(self) -> bool:
        """The services sign in with IAM tokens as the app role, never with the password."""
        return self.iam_auth in ("services", "on")

    @property
    def master_closed(self) -> bool:
        """Only the bootstrap task may read the master secret, and the secret rotates.

        One stage after `services`: until then the services' execution roles may still
        read it, so an ECS rollback to the previous (password) revision still starts.
        """
        return self.iam_auth == "on"

    def class_of(self, endpoint: str) -> str:
        return self.replica_instance_class if endpoint == "replica" else self.instance_class


@dataclass(frozen=True)
class ServiceSettings:
    cpu: int
    memory: int
    count: int
    """The fixed task count, or the autoscaling minimum."""
    max_count: int
    db_pool_size: int
    db_max_overflow: int
    cpu_target: int | None = None
    concurrency: int | None = None
    backlog_target: int | None = None


@dataclass(frozen=True)
class PodSettings:
    """One workload on the cluster: its pod's requests and its replica range."""

    cpu: int
    """Millicores requested."""
    memory: int
    """MiB requested, and the limit."""
    replicas: int = 1
    """The autoscaling minimum."""
    max_replicas: int = 1
    cpu_target: int | None = None
    db_pool_size: int = 0
    db_max_overflow: int = 0


@dataclass(frozen=True)
class WorkloadSettings:
    tracing_storage: str
    tracing_storage_gb: int
    tracing_retention_hours: int
    tracing_image: str


@dataclass(frozen=True)
class CacheSettings:
    node_type: str
    nodes: int


@dataclass(frozen=True)
class KafkaSettings:
    version: str
    broker_type: str
    brokers: int
    storage_gb: int


@dataclass(frozen=True)
class ShardSettings:
    count: int
    """Shard 1 is the phase-2 database; shards 2..count are new instances."""
    instance_class: str
    """The class of shards 2 and later."""


@dataclass(frozen=True)
class EdgeSettings:
    certificate_arn: str | None
    public_hostname: str | None
    alb_deletion_protection: bool
    waf_enabled: bool
    waf_rate_limit: int

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


@dataclass(frozen=True)
class ApiSettings:
    cors_origins: str | None
    oidc_issuer: str | None
    oidc_audience: str | None
    oidc_jwks_url: str | None
    oidc_workspace_claim: str

    def environment(self) -> dict[str, str]:
        """What the HTTP API reads (the app's CORS_* and OIDC_* settings); none is secret."""
        env = {"CORS_ORIGINS": self.cors_origins} if self.cors_origins else {}
        if self.oidc_issuer:
            env |= {
                "OIDC_ISSUER": self.oidc_issuer,
                "OIDC_AUDIENCE": str(self.oidc_audience),
                "OIDC_JWKS_URL": str(self.oidc_jwks_url),
                "OIDC_WORKSPACE_CLAIM": self.oidc_workspace_claim,
            }
        return env


@dataclass(frozen=True)
class MailSettings:
    sender_domain: str | None
    mail_from: str | None
    feedback_webhook: bool


@dataclass(frozen=True)
class ClusterSettings:
    """The EKS cluster of phase 3 and the share of the API's traffic it takes."""

    version: str
    support_type: str
    public_access_cidrs: str | None
    admin_role_arns: str | None
    node_instance_type: str
    node_count: int
    node_max_count: int
    node_disk_gb: int
    traffic_percent: int

    @property
    def public_cidrs(self) -> list[str]:
        return self.public_access_cidrs.split(",") if self.public_access_cidrs else []

    @property
    def admins(self) -> list[str]:
        return self.admin_role_arns.split(",") if self.admin_role_arns else []


@dataclass(frozen=True)
class Settings:
    stack: str
    phase: int
    region: str
    ephemeral: bool
    production: bool
    log_retention_days: int
    image: str | None
    retire_ecs: bool
    network: NetworkSettings
    database: DatabaseSettings
    services: Mapping[str, ServiceSettings]
    cache: CacheSettings
    kafka: KafkaSettings
    shards: ShardSettings
    edge: EdgeSettings
    mail: MailSettings
    api: ApiSettings
    workloads: WorkloadSettings
    pods: Mapping[str, PodSettings]
    """Phase 3's workloads on the cluster, by service name."""
    cluster: ClusterSettings
    alert_email: str | None = None
    cost_assumptions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def protect(self) -> bool:
        """Stateful resources are protected unless the stack is declared throwaway."""
        return not self.ephemeral

    @property
    def features(self) -> phases.Features:
        features = phases.of(self.phase)
        return features.retired() if self.retire_ecs else features

    def service(self, name: str) -> ServiceSettings:
        return self.services[name]

    def pools(self) -> dict[str, list[capacity.Pool]]:
        """Connections each database endpoint may see at maximum scale, per service, from
        the services the topology lets reach it.

        A service that reaches the shards holds a pool on every shard, shard 1 included,
        and shard 1 is the primary: its pools count against the primary's class.
        """
        found: dict[str, list[capacity.Pool]] = {}
        for service in topology.running(self.features):
            pool = self._pool(service)
            for endpoint in service.database_endpoints(self.features):
                key = "primary" if endpoint == "shards" else endpoint
                found.setdefault(key, []).append(pool)
        return found

    def _pool(self, service: topology.Service) -> capacity.Pool:
        if service.platform is topology.Platform.EKS:
            pod = self.pods[service.name]
            return capacity.Pool(
                service.name, pod.max_replicas, pod.db_pool_size, pod.db_max_overflow
            )
        s = self.services[service.name]
        tasks = s.max_count if self.features.autoscaling else s.count
        return capacity.Pool(service.name, tasks, s.db_pool_size, s.db_max_overflow)


def build(stack: str, region: str | None, values: Mapping[str, Any]) -> Settings:
    """Settings from the values `SCHEMA.read` returned, then the checks across keys."""
    if region is None:
        raise ConfigError("aws:region", None, "set aws:region, e.g. us-east-1")
    if region not in REGIONS:
        raise ConfigError("aws:region", region, "one of " + ", ".join(sorted(REGIONS)))
    groups: dict[str, dict[str, Any]] = {}
    for key in SCHEMA.keys:
        groups.setdefault(key.group, {})[key.field] = values[key.name]
    stack_values = groups.pop("stack")
    services = {
        group.removeprefix("service:"): ServiceSettings(**fields)
        for group, fields in groups.items()
        if group.startswith("service:")
    }
    pods = {
        group.removeprefix("pod:"): PodSettings(**fields)
        for group, fields in groups.items()
        if group.startswith("pod:")
    }
    settings = Settings(
        stack=stack,
        region=region,
        **stack_values,
        network=NetworkSettings(**groups["network"]),
        database=DatabaseSettings(**groups["database"]),
        services=services,
        cache=CacheSettings(**groups["cache"]),
        kafka=KafkaSettings(**groups["kafka"]),
        shards=ShardSettings(**groups["shards"]),
        edge=EdgeSettings(**groups["edge"]),
        mail=MailSettings(**groups["mail"]),
        api=ApiSettings(**groups["api"]),
        workloads=WorkloadSettings(**groups["workloads"]),
        pods=pods,
        cluster=ClusterSettings(**groups["cluster"]),
        alert_email=groups["observability"]["alert_email"],
        cost_assumptions=groups["tooling"]["cost_assumptions"] or {},
    )
    _check_fargate(settings)
    _check_storage(settings.database)
    _check_mail(settings.mail)
    _check_oidc(settings.api)
    _check_scaling(settings)
    _check_high_availability(settings)
    _check_cluster(settings.cluster)
    _check_cutover(settings)
    _check_connections(settings)
    _check_kafka(settings.kafka)
    return settings


def _check_fargate(s: Settings) -> None:
    for name, service in s.services.items():
        if service.memory not in FARGATE_SIZES[service.cpu]:
            sizes = ", ".join(str(m) for m in FARGATE_SIZES[service.cpu])
            raise ConfigError(
                f"{name}Memory", service.memory, f"for {name}Cpu {service.cpu}: one of {sizes} MiB"
            )


def _check_storage(db: DatabaseSettings) -> None:
    if db.max_allocated_storage_gb < db.allocated_storage_gb:
        raise ConfigError(
            "dbMaxAllocatedStorageGb",
            db.max_allocated_storage_gb,
            f">= dbAllocatedStorageGb ({db.allocated_storage_gb})",
        )


def _check_mail(mail: MailSettings) -> None:
    if mail.feedback_webhook and mail.sender_domain is None:
        raise ConfigError("feedbackWebhook", True, "only together with senderDomain")
    if mail.mail_from is None:
        return
    if mail.sender_domain is None:
        raise ConfigError("mailFrom", mail.mail_from, "only together with senderDomain")
    if not mail.mail_from.endswith("@" + mail.sender_domain):
        raise ConfigError(
            "mailFrom", mail.mail_from, f"an address at senderDomain ({mail.sender_domain})"
        )


def _check_oidc(api: ApiSettings) -> None:
    """The app verifies tokens only with all three; a partial set would silently disable it."""
    given = {"oidcIssuer": api.oidc_issuer, "oidcAudience": api.oidc_audience,
             "oidcJwksUrl": api.oidc_jwks_url}  # fmt: skip
    missing = [k for k, v in given.items() if not v]
    if missing and len(missing) < len(given):
        set_key = next(k for k, v in given.items() if v)
        raise ConfigError(set_key, given[set_key], f"only together with {', '.join(missing)}")


def _check_scaling(s: Settings) -> None:
    for name, service in s.services.items():
        if service.max_count < service.count:
            count_key = next(k.name for k in SCHEMA.keys if k.group == f"service:{name}"
                             and k.field == "count")  # fmt: skip
            raise ConfigError(
                f"{name}MaxCount", service.max_count, f">= {count_key} ({service.count})"
            )
    for name, pod in s.pods.items():
        if pod.max_replicas < pod.replicas:
            raise ConfigError(
                f"{name}MaxReplicas", pod.max_replicas, f">= {name}Replicas ({pod.replicas})"
            )


def _check_high_availability(s: Settings) -> None:
    """From phase 2 a production stack must survive losing an AZ."""
    if not s.production or s.phase < 2:
        return
    if not s.database.multi_az:
        raise ConfigError("dbMultiAz", False, "true on a production stack (phase 2 and later)")
    if s.cache.nodes < 2:
        raise ConfigError(
            "cacheNodes", s.cache.nodes, ">= 2 on a production stack, for automatic failover"
        )


AZS = 2
"""The VPC's availability zones (components/network.py): one private subnet in each."""


def _check_kafka(kafka: KafkaSettings) -> None:
    """MSK spreads brokers evenly over its client subnets, one per AZ."""
    if kafka.brokers % AZS:
        raise ConfigError(
            "kafkaBrokers", kafka.brokers, f"a multiple of {AZS} (one broker per private subnet)"
        )


def _check_cluster(c: ClusterSettings) -> None:
    """What would make the cluster unsafe or unusable, refused before anything is declared."""
    for cidr in c.public_cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise ConfigError("eksPublicAccessCidrs", cidr, "IPv4 networks in CIDR form") from None
        if net.prefixlen < MIN_PUBLIC_PREFIX:
            raise ConfigError(
                "eksPublicAccessCidrs",
                cidr,
                f"networks of /{MIN_PUBLIC_PREFIX} or smaller (the runners' egress addresses): "
                "the Kubernetes API must not be open to the internet",
            )
    family = c.node_instance_type.split(".")[0]
    if family.startswith("t"):
        raise ConfigError(
            "eksNodeInstanceType",
            c.node_instance_type,
            "a type outside the t family: security groups for pods need trunk ENIs, which "
            "no t instance supports (m6i.large, c6i.large, r6i.large, ...)",
        )
    if c.node_max_count < c.node_count:
        raise ConfigError("eksNodeMaxCount", c.node_max_count, f">= eksNodeCount ({c.node_count})")


def _check_cutover(s: Settings) -> None:
    """ECS retires only after the cluster takes every request: retiring first would move
    the whole load in one step, untested."""
    if s.retire_ecs and s.cluster.traffic_percent != 100:
        raise ConfigError(
            "retireEcs",
            True,
            f"only once eksTrafficPercent is 100 (it is {s.cluster.traffic_percent}): move the "
            "traffic to the cluster first, then retire ECS",
        )


def _check_connections(s: Settings) -> None:
    """The app's pools at maximum scale must fit in what each database endpoint accepts."""
    for endpoint, pools in s.pools().items():
        instance_class = s.database.class_of(endpoint)
        usable = capacity.usable_connections(instance_class)
        if usable is None:
            continue  # unknown class: the program warns instead
        needed = sum(p.connections for p in pools)
        if needed > usable:
            detail = " + ".join(
                f"{p.service} {p.tasks} x ({p.pool_size}+{p.max_overflow})" for p in pools
            )
            key = "dbInstanceClass" if endpoint == "primary" else "dbReplicaInstanceClass"
            raise ConfigError(
                key,
                instance_class,
                f"a class with room for {needed} connections at maximum scale ({detail}); "
                f"{instance_class} allows about {usable}. Pick a larger class or smaller pools",
            )
