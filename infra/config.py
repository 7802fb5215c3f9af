"""Every `cold-reach:*` key, read once into a frozen, validated settings object.

The program never calls `pulumi.Config` anywhere else: a bad value stops the
run here, before any resource is declared, with one message that names the
key, the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi

from infra import capacity

PROJECT = "cold-reach"

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

# Fargate's valid task sizes: CPU units -> allowed memory in MiB.
FARGATE_SIZES: Mapping[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

_DB_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CACHE_CLASS = re.compile(r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$")


class ConfigError(Exception):
    """A stack configuration value is missing or not allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        super().__init__(f"{full_key} = {value!r} is not allowed: {allowed}")


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one stack. Defaults suit a small dev stack."""

    stack: str
    phase: int
    region: str
    ephemeral: bool = False
    vpc_cidr: str = "10.40.0.0/16"
    log_retention_days: int = 30
    # Database
    db_instance_class: str = "db.t4g.micro"
    db_allocated_storage_gb: int = 20
    db_max_allocated_storage_gb: int = 100
    db_backup_retention_days: int = 7
    db_multi_az: bool = False
    db_engine_version: str = "16"
    # Web service
    web_cpu: int = 256
    web_memory: int = 512
    web_desired_count: int = 1
    web_db_pool_size: int = 5
    web_db_max_overflow: int = 5
    # Phase 2: scaling, worker, replica, cache, NAT
    production: bool = False
    """High availability is required from phase 2 on: Multi-AZ database, 2+ cache nodes."""
    nat_per_az: bool = False
    web_max_count: int = 4
    web_cpu_target: int = 60
    worker_cpu: int = 512
    worker_memory: int = 1024
    worker_min_count: int = 1
    worker_max_count: int = 4
    worker_concurrency: int = 16
    worker_backlog_target: int = 300
    worker_db_pool_size: int = 4
    worker_db_max_overflow: int = 4
    db_replica_instance_class: str | None = None
    cache_node_type: str = "cache.t4g.micro"
    cache_nodes: int = 1
    # Image and edge
    image: str | None = None
    certificate_arn: str | None = None
    public_hostname: str | None = None
    """The name users (and SNS) reach the app by; its DNS record points at the ALB."""
    alb_deletion_protection: bool = False
    # Mail
    sender_domain: str | None = None
    mail_from: str | None = None

    @property
    def protect(self) -> bool:
        """Stateful resources are protected unless the stack is declared throwaway."""
        return not self.ephemeral

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None

    @property
    def replica_class(self) -> str:
        return self.db_replica_instance_class or self.db_instance_class

    def pools(self) -> dict[str, list[capacity.Pool]]:
        """Connections each database may see at maximum scale, per service."""
        web_tasks = self.web_max_count if self.phase >= 2 else self.web_desired_count
        web = capacity.Pool("web", web_tasks, self.web_db_pool_size, self.web_db_max_overflow)
        if self.phase < 2:
            return {"primary": [web]}
        worker = capacity.Pool(
            "worker", self.worker_max_count, self.worker_db_pool_size, self.worker_db_max_overflow
        )
        # Web reads lists from the replica and writes to the primary: a pool on each.
        return {"primary": [web, worker], "replica": [web]}


# --- readers -----------------------------------------------------------------


class _Reader:
    """Typed access to raw config values with errors that name the key."""

    def __init__(self, get: Callable[[str], str | None]) -> None:
        self._get = get

    def raw(self, key: str) -> str | None:
        value = self._get(key)
        return None if value is None or value == "" else value

    def integer(
        self, key: str, default: int, *, minimum: int = 1, maximum: int | None = None
    ) -> int:
        raw = self.raw(key)
        if raw is None:
            return default
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigError(key, raw, "a whole number") from None
        allowed = f"a whole number >= {minimum}" + (f" and <= {maximum}" if maximum else "")
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigError(key, value, allowed)
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self.raw(key)
        if raw is None:
            return default
        text = str(raw).strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ConfigError(key, raw, "true or false")

    def text(
        self, key: str, default: str | None, *, pattern: re.Pattern[str], allowed: str
    ) -> str | None:
        raw = self.raw(key)
        if raw is None:
            return default
        if not pattern.match(raw):
            raise ConfigError(key, raw, allowed)
        return raw


def _cidr(reader: _Reader, key: str, default: str) -> str:
    raw = reader.raw(key) or default
    try:
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError:
        raise ConfigError(key, raw, "an IPv4 network in CIDR form, e.g. 10.40.0.0/16") from None
    if net.version != 4 or not 16 <= net.prefixlen <= 20:
        raise ConfigError(key, raw, "an IPv4 network from /16 to /20 (room for 4 subnets)")
    return str(net)


def _fargate(r: _Reader, service: str, cpu: int, memory: int) -> tuple[int, int]:
    cpu = r.integer(f"{service}Cpu", cpu)
    if cpu not in FARGATE_SIZES:
        raise ConfigError(f"{service}Cpu", cpu, f"a Fargate CPU size: {sorted(FARGATE_SIZES)}")
    memory = r.integer(f"{service}Memory", memory)
    if memory not in FARGATE_SIZES[cpu]:
        sizes = ", ".join(str(m) for m in FARGATE_SIZES[cpu])
        raise ConfigError(f"{service}Memory", memory, f"for {service}Cpu {cpu}: one of {sizes} MiB")
    return cpu, memory


def parse(stack: str, get: Callable[[str], str | None], region: str | None) -> Settings:
    """Builds `Settings` from a key -> raw string lookup (keys without the project prefix)."""
    r = _Reader(get)
    phase = r.integer("phase", 1, minimum=1, maximum=3)
    if region is None:
        raise ConfigError("aws:region", None, "set aws:region, e.g. us-east-1")
    if region not in REGIONS:
        raise ConfigError("aws:region", region, "one of " + ", ".join(sorted(REGIONS)))

    web_cpu, web_memory = _fargate(r, "web", Settings.web_cpu, Settings.web_memory)
    worker_cpu, worker_memory = _fargate(r, "worker", Settings.worker_cpu, Settings.worker_memory)

    retention = r.integer("logRetentionDays", Settings.log_retention_days)
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError("logRetentionDays", retention, f"one of {LOG_RETENTION_DAYS}")

    storage = r.integer("dbAllocatedStorageGb", Settings.db_allocated_storage_gb, minimum=20)
    max_storage = r.integer(
        "dbMaxAllocatedStorageGb", max(Settings.db_max_allocated_storage_gb, storage)
    )
    if max_storage < storage:
        raise ConfigError(
            "dbMaxAllocatedStorageGb", max_storage, f">= dbAllocatedStorageGb ({storage})"
        )

    sender_domain = r.text(
        "senderDomain",
        None,
        pattern=_DOMAIN,
        allowed="a lowercase DNS domain, e.g. mail.example.com",
    )
    mail_from = r.text("mailFrom", None, pattern=_EMAIL, allowed="an email address")
    if mail_from is not None and sender_domain is None:
        raise ConfigError("mailFrom", mail_from, "only together with senderDomain")
    if mail_from is not None and sender_domain and not mail_from.endswith("@" + sender_domain):
        raise ConfigError("mailFrom", mail_from, f"an address at senderDomain ({sender_domain})")

    engine = r.raw("dbEngineVersion") or Settings.db_engine_version
    if not re.match(r"^16(\.\d+)?$", engine):
        raise ConfigError("dbEngineVersion", engine, "PostgreSQL 16, e.g. 16 or 16.4")

    db_class_pattern = {
        "pattern": _DB_CLASS,
        "allowed": "an RDS instance class such as db.t4g.micro",
    }
    production = r.flag("production", stack == "prod")
    web_desired = r.integer("webDesiredCount", Settings.web_desired_count, maximum=100)
    worker_min = r.integer("workerMinCount", Settings.worker_min_count, maximum=100)
    settings = Settings(
        stack=stack,
        phase=phase,
        region=region,
        ephemeral=r.flag("ephemeral", False),
        vpc_cidr=_cidr(r, "vpcCidr", Settings.vpc_cidr),
        log_retention_days=retention,
        db_instance_class=r.text("dbInstanceClass", Settings.db_instance_class, **db_class_pattern)
        or Settings.db_instance_class,
        db_replica_instance_class=r.text("dbReplicaInstanceClass", None, **db_class_pattern),
        db_allocated_storage_gb=storage,
        db_max_allocated_storage_gb=max_storage,
        db_backup_retention_days=r.integer(
            "dbBackupRetentionDays", Settings.db_backup_retention_days, minimum=7, maximum=35
        ),
        db_multi_az=r.flag("dbMultiAz", False),
        db_engine_version=engine,
        web_cpu=web_cpu,
        web_memory=web_memory,
        web_desired_count=web_desired,
        web_max_count=r.integer(
            "webMaxCount", max(Settings.web_max_count, web_desired), maximum=100
        ),
        web_cpu_target=r.integer("webCpuTarget", Settings.web_cpu_target, minimum=10, maximum=90),
        web_db_pool_size=r.integer("webDbPoolSize", Settings.web_db_pool_size, maximum=100),
        web_db_max_overflow=r.integer(
            "webDbMaxOverflow", Settings.web_db_max_overflow, minimum=0, maximum=100
        ),
        production=production,
        nat_per_az=r.flag("natPerAz", production),
        worker_cpu=worker_cpu,
        worker_memory=worker_memory,
        worker_min_count=worker_min,
        worker_max_count=r.integer(
            "workerMaxCount", max(Settings.worker_max_count, worker_min), maximum=100
        ),
        worker_concurrency=r.integer("workerConcurrency", Settings.worker_concurrency, maximum=256),
        worker_backlog_target=r.integer("workerBacklogTarget", Settings.worker_backlog_target),
        worker_db_pool_size=r.integer(
            "workerDbPoolSize", Settings.worker_db_pool_size, maximum=100
        ),
        worker_db_max_overflow=r.integer(
            "workerDbMaxOverflow", Settings.worker_db_max_overflow, minimum=0, maximum=100
        ),
        cache_node_type=r.text(
            "cacheNodeType",
            Settings.cache_node_type,
            pattern=_CACHE_CLASS,
            allowed="an ElastiCache node type such as cache.t3.micro",
        )
        or Settings.cache_node_type,
        cache_nodes=r.integer("cacheNodes", 2 if production else 1, maximum=6),
        image=r.raw("image"),
        certificate_arn=r.text(
            "certificateArn",
            None,
            pattern=_ARN,
            allowed="an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)",
        ),
        alb_deletion_protection=r.flag("albDeletionProtection", False),
        public_hostname=r.text(
            "publicHostname",
            None,
            pattern=_DOMAIN,
            allowed="a lowercase DNS name, e.g. api.example.com",
        ),
        sender_domain=sender_domain,
        mail_from=mail_from,
    )
    _check_scaling(settings)
    _check_high_availability(settings)
    _check_connections(settings)
    return settings


def _check_scaling(s: Settings) -> None:
    if s.web_max_count < s.web_desired_count:
        raise ConfigError(
            "webMaxCount", s.web_max_count, f">= webDesiredCount ({s.web_desired_count})"
        )
    if s.worker_max_count < s.worker_min_count:
        raise ConfigError(
            "workerMaxCount", s.worker_max_count, f">= workerMinCount ({s.worker_min_count})"
        )


def _check_high_availability(s: Settings) -> None:
    """From phase 2 a production stack must survive losing an AZ."""
    if not s.production or s.phase < 2:
        return
    if not s.db_multi_az:
        raise ConfigError("dbMultiAz", False, "true on a production stack (phase 2 and later)")
    if s.cache_nodes < 2:
        raise ConfigError(
            "cacheNodes", s.cache_nodes, ">= 2 on a production stack, for automatic failover"
        )


def _check_connections(s: Settings) -> None:
    """The app's pools at maximum scale must fit in what each database accepts."""
    classes = {"primary": s.db_instance_class, "replica": s.replica_class}
    for role, pools in s.pools().items():
        usable = capacity.usable_connections(classes[role])
        if usable is None:
            continue  # unknown class: the program warns instead
        needed = sum(p.connections for p in pools)
        if needed > usable:
            detail = " + ".join(
                f"{p.service} {p.tasks} x ({p.pool_size}+{p.max_overflow})" for p in pools
            )
            key = "dbInstanceClass" if role == "primary" else "dbReplicaInstanceClass"
            raise ConfigError(
                key,
                classes[role],
                f"a class with room for {needed} connections at maximum scale ({detail}); "
                f"{classes[role]} allows about {usable}. Pick a larger class or smaller pools",
            )


def load() -> Settings:
    """Reads the current stack's configuration; raises `pulumi.RunError` on a bad value.

    `RunError` is how a Pulumi program reports a user error: the CLI prints the
    message alone, without a Python traceback.
    """
    cfg = pulumi.Config(PROJECT)
    aws = pulumi.Config("aws")
    try:
        return parse(pulumi.get_stack(), cfg.get, aws.get("region"))
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None
