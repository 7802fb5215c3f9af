"""Every `cold-reach:*` key, declared once. The README's key table is generated from here
(`uv run --frozen python -m infra.reference --write`), and a test keeps the two equal.

Defaults suit a small dev stack. Service keys follow one pattern per service
(`<service>Cpu`, `<service>Memory`, pool sizes, counts), so a service added to
the topology gets its keys from `service_keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.config.schema import (
    AnyText,
    Cidr,
    Derived,
    Flag,
    Integer,
    JsonObject,
    Key,
    OneOf,
    Schema,
    Text,
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

DB_CLASS = Text(r"^db\.[a-z0-9]+\.[a-z0-9]+$", "an RDS instance class such as db.t4g.micro")
MSK_BROKER = Text(
    r"^kafka\.(t3\.small|m5\.[0-9]*x?large|m7g\.[0-9]*x?large)$",
    "an MSK Standard broker type such as kafka.m5.large or kafka.m7g.large",
)
MSK_KRAFT_VERSION = Text(
    # MSK names KRaft versions with a ".kraft" suffix, 4.x included (4.0.x.kraft, 4.1.x.kraft);
    # a bare "4.0.x" is not a version MSK accepts.
    r"^(3\.[7-9]|4\.[0-9]+)\.x\.kraft$",
    "an MSK version in KRaft mode: 3.7.x.kraft to 3.9.x.kraft, or 4.0.x.kraft and later",
)
CACHE_CLASS = Text(
    r"^cache\.[a-z0-9]+\.[a-z0-9]+$", "an ElastiCache node type such as cache.t3.micro"
)
DOMAIN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
CERTIFICATE_ARN = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$"
HTTPS_URL = r"^https://[a-z0-9.-]+(:\d+)?(/[^\s]*)?$"
ORIGINS = r"^https://[a-z0-9.-]+(:\d+)?(,https://[a-z0-9.-]+(:\d+)?)*$"

LATER = (2, 3)
"""Keys of what phase 2 adds (replica, cache, NAT, autoscaling, the worker)."""
PHASE3 = (3,)
CIDR = r"(\d{1,3}\.){3}\d{1,3}/\d{1,2}"
CIDR_LIST = rf"^{CIDR}(,{CIDR})*$"
ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+"
ROLE_ARNS = rf"^{ROLE_ARN}(,{ROLE_ARN})*$"
"""Keys of what phase 3 adds (MSK, shards)."""


def _production(stack: str, read: Mapping[str, Any]) -> bool:
    return bool(read["production"])


def service_keys(
    service: str,
    *,
    phases: tuple[int, ...],
    cpu: int,
    memory: int,
    count_key: str,
    count: int,
    max_count: int,
    pool: tuple[int, int],
    scaling_phases: tuple[int, ...] = LATER,
) -> list[Key]:
    """The keys every app service has: task size, task count and database pool."""
    group = f"service:{service}"
    count_name = f"{service}{count_key}"

    def at_least_count(stack: str, read: Mapping[str, Any]) -> int:
        return max(max_count, read[count_name])

    return [
        Key(f"{service}Cpu", group, "cpu", OneOf(tuple(FARGATE_SIZES), "a Fargate CPU size:"),
            cpu, f"CPU units of one {service} task", phases),
        Key(f"{service}Memory", group, "memory", Integer(), memory,
            f"Memory (MiB) of one {service} task; must suit its CPU size", phases),
        Key(count_name, group, "count", Integer(maximum=100), count,
            f"{service} tasks: the fixed count, or the autoscaling minimum", phases),
        Key(f"{service}MaxCount", group, "max_count", Integer(maximum=100),
            Derived(at_least_count, f"{max_count}, or {count_name} if larger"),
            f"Autoscaling maximum of {service} tasks", scaling_phases),
        Key(f"{service}DbPoolSize", group, "db_pool_size", Integer(maximum=100), pool[0],
            f"SQLAlchemy pool size per {service} task", phases),
        Key(f"{service}DbMaxOverflow", group, "db_max_overflow", Integer(minimum=0, maximum=100),
            pool[1], f"Connections a {service} task may open above its pool", phases),
    ]  # fmt: skip


PHASE3 = (3,)
"""Keys of what phase 3 adds (the cluster's workloads)."""
CPU_MILLICORES = Integer(minimum=50, maximum=16000)


def pod_keys(
    service: str,
    *,
    cpu: int,
    memory: int,
    replicas: int = 1,
    max_replicas: int = 1,
    pool: tuple[int, int] | None = None,
    scalable: bool = True,
) -> list[Key]:
    """The keys every workload on the cluster has: its pod's size and, when it scales out,
    its replica range and autoscaling target; when it reaches the database, its pool."""
    group = f"pod:{service}"
    replicas_name = f"{service}Replicas"

    def at_least_replicas(stack: str, read: Mapping[str, Any]) -> int:
        return max(max_replicas, read[replicas_name])

    keys = [
        Key(
            f"{service}PodCpu",
            group,
            "cpu",
            CPU_MILLICORES,
            cpu,
            f"CPU (millicores) one {service} pod requests",
            PHASE3,
        ),
        Key(
            f"{service}PodMemory",
            group,
            "memory",
            Integer(minimum=64, maximum=65536),
            memory,
            f"Memory (MiB) one {service} pod requests, and its limit",
            PHASE3,
        ),
    ]
    if scalable:
        keys += [
            Key(
                replicas_name,
                group,
                "replicas",
                Integer(maximum=100),
                replicas,
                f"{service} pods: the autoscaling minimum",
                PHASE3,
            ),
            Key(
                f"{service}MaxReplicas",
                group,
                "max_replicas",
                Integer(maximum=100),
                Derived(at_least_replicas, f"{max_replicas}, or {replicas_name} if larger"),
                f"Autoscaling maximum of {service} pods",
                PHASE3,
            ),
            Key(
                f"{service}CpuTarget",
                group,
                "cpu_target",
                Integer(minimum=10, maximum=90),
                70,
                f"Average CPU percent of its request the {service} autoscaling holds",
                PHASE3,
            ),
        ]
    if pool is not None:
        keys += [
            Key(
                f"{service}DbPoolSize",
                group,
                "db_pool_size",
                Integer(maximum=100),
                pool[0],
                f"SQLAlchemy pool size per {service} pod and database",
                PHASE3,
            ),
            Key(
                f"{service}DbMaxOverflow",
                group,
                "db_max_overflow",
                Integer(minimum=0, maximum=100),
                pool[1],
                f"Connections a {service} pod may open above its pool, per database",
                PHASE3,
            ),
        ]
    return keys


def _max_storage(stack: str, read: Mapping[str, Any]) -> int:
    return max(100, read["dbAllocatedStorageGb"])


def _cache_nodes(stack: str, read: Mapping[str, Any]) -> int:
    return 2 if read["production"] else 1


def _kafka_storage(stack: str, read: Mapping[str, Any]) -> int:
    return 100 if read["production"] else 20


KEYS: list[Key] = [
    # --- the stack ---
    Key("phase", "stack", "phase", Integer(maximum=3), 1,
        "Which phase the stack runs: 1 (~1k users), 2 (~10k), 3 (100k+)"),
    Key("ephemeral", "stack", "ephemeral", Flag(), False,
        "A throwaway stack: no protect, no deletion protection, no final snapshot"),
    Key("production", "stack", "production", Flag(),
        Derived(lambda stack, _: stack == "prod", "true on the prod stack"),
        "High availability is required: Multi-AZ database, 2+ cache nodes, NAT per AZ",
        LATER),
    Key("logRetentionDays", "stack", "log_retention_days", OneOf(LOG_RETENTION_DAYS), 30,
        "Retention of every log group the program creates (CloudWatch's allowed values)"),
    Key("image", "stack", "image", AnyText("an image reference"), None,
        "Deploy this image instead of building app/ (then nothing is built or pushed)"),
    Key("retireEcs", "stack", "retire_ecs", Flag(), False,
        "Phase 3 after the cutover: remove the ECS services, Celery and Redis "
        "(`coldreach promote` checks the queue is drained first)", (3,)),
    # --- network ---
    Key("vpcCidr", "network", "vpc_cidr", Cidr(16, 20), "10.40.0.0/16",
        "The VPC's address range (split into 2 public and 2 private subnets)"),
    Key("natPerAz", "network", "nat_per_az", Flag(),
        Derived(_production, "the value of production"),
        "One NAT gateway per AZ instead of one shared (survives losing an AZ)", LATER),
    # --- database ---
    # Phase 3's cluster services hold pools beside the ECS ones during the cutover (about
    # 320 connections at maximum scale): more than a micro class accepts.
    Key("dbInstanceClass", "database", "instance_class", DB_CLASS,
        Derived(lambda _, read: "db.t4g.medium" if read["phase"] == 3 else "db.t4g.micro",
                "db.t4g.micro; db.t4g.medium from phase 3"),
        "RDS class of the primary"),
    Key("dbReplicaInstanceClass", "database", "replica_instance_class", DB_CLASS,
        Derived(lambda _, read: read["dbInstanceClass"], "dbInstanceClass"),
        "RDS class of the read replica", LATER),
    Key("dbAllocatedStorageGb", "database", "allocated_storage_gb", Integer(minimum=20), 20,
        "Storage allocated at creation (GiB, gp3)"),
    Key("dbMaxAllocatedStorageGb", "database", "max_allocated_storage_gb", Integer(),
        Derived(_max_storage, "100, or dbAllocatedStorageGb if larger"),
        "Storage autoscaling ceiling (GiB)"),
    Key("dbBackupRetentionDays", "database", "backup_retention_days",
        Integer(minimum=7, maximum=35), 7, "Automated backup retention (days)"),
    Key("dbMultiAz", "database", "multi_az", Flag(), False,
        "A standby in the second AZ (required on production stacks from phase 2)"),
    Key("dbEngineVersion", "database", "engine_version",
        Text(r"^16(\.\d+)?$", "PostgreSQL 16, e.g. 16 or 16.4"), "16",
        "PostgreSQL version (major, or major.minor)"),
    Key("dbIamAuth", "database", "iam_auth",
        Text(r"^(off|roles|services|on)$", "off, roles, services or on (the rollout stages)"),
        "on",
        "Services sign in with RDS IAM tokens as least-privilege roles, the master password "
        "rotates. An existing stack steps off -> roles -> services -> on "
        "(docs/database-access.md)"),
    # --- services, by name ---
    *service_keys("web", phases=(1, 2, 3), cpu=256, memory=512, count_key="DesiredCount",
                  count=1, max_count=4, pool=(5, 5)),
    Key("webCpuTarget", "service:web", "cpu_target", Integer(minimum=10, maximum=90), 60,
        "Average CPU percent the web autoscaling holds", LATER),
    *service_keys("worker", phases=LATER, cpu=512, memory=1024, count_key="MinCount",
                  count=1, max_count=4, pool=(4, 4)),
    Key("workerConcurrency", "service:worker", "concurrency", Integer(maximum=256), 16,
        "Sends in flight per worker task (threads)", LATER),
    Key("workerBacklogTarget", "service:worker", "backlog_target", Integer(), 300,
        "Queued emails per running worker task the autoscaling holds", LATER),
    # --- workloads on the cluster (phase 3), by name ---
    *pod_keys("api", cpu=250, memory=512, replicas=2, max_replicas=6, pool=(5, 5)),
    *pod_keys("clients", cpu=250, memory=384, replicas=2, max_replicas=6, pool=(5, 5)),
    *pod_keys("campaigns", cpu=250, memory=384, replicas=2, max_replicas=6, pool=(5, 5)),
    *pod_keys("sender", cpu=250, memory=384, replicas=2, max_replicas=8, pool=(4, 4)),
    # One Jaeger pod: Badger is a single-writer store, and spans split across in-memory
    # replicas would make traces incomplete.
    *pod_keys("tracing", cpu=250, memory=1024, scalable=False),
    Key("tracingStorage", "workloads", "tracing_storage",
        Text(r"^(memory|badger)$", "memory or badger"),
        Derived(lambda _, read: "badger" if read["production"] else "memory",
                "badger on production stacks, else memory"),
        "Where Jaeger keeps spans: in memory (lost on restart) or Badger on an EBS volume",
        PHASE3),
    Key("tracingStorageGb", "workloads", "tracing_storage_gb", Integer(minimum=1, maximum=1000),
        20, "Size (GiB) of Jaeger's Badger volume", PHASE3),
    Key("tracingRetentionHours", "workloads", "tracing_retention_hours",
        Integer(minimum=1, maximum=720), 72, "How long Jaeger keeps spans in Badger", PHASE3),
    Key("tracingImage", "workloads", "tracing_image",
        Text(r"^[a-z0-9./-]+(:[0-9]+\.[0-9]+\.[0-9]+|@sha256:[a-f0-9]{64})$",
             "an image with a version tag (x.y.z) or a digest"),
        "jaegertracing/jaeger:2.17.0", "The Jaeger v2 image", PHASE3),
    # --- cache ---
    Key("cacheNodeType", "cache", "node_type", CACHE_CLASS, "cache.t4g.micro",
        "ElastiCache node type of the Redis broker", LATER),
    Key("cacheNodes", "cache", "nodes", Integer(maximum=6),
        Derived(_cache_nodes, "2 on production stacks, else 1"),
        "Redis nodes: 1 is a lone primary, 2+ adds replicas with automatic failover", LATER),
    # --- kafka (MSK) ---
    Key("kafkaVersion", "kafka", "version", MSK_KRAFT_VERSION, "3.9.x.kraft",
        "MSK Kafka version; KRaft only (chosen at creation, a cluster cannot switch mode)",
        PHASE3),
    Key("kafkaBrokerType", "kafka", "broker_type", MSK_BROKER, "kafka.m5.large",
        "MSK broker instance type", PHASE3),
    Key("kafkaBrokers", "kafka", "brokers", Integer(minimum=2, maximum=60), 2,
        "MSK brokers: a multiple of the 2 private subnets; topic replication follows it",
        PHASE3),
    Key("kafkaBrokerStorageGb", "kafka", "storage_gb", Integer(minimum=1, maximum=16384),
        Derived(_kafka_storage, "100 on production stacks, else 20"),
        "EBS storage per broker (GiB)", PHASE3),
    # --- shards ---
    Key("shards", "shards", "count", Integer(minimum=1, maximum=16), 2,
        "PostgreSQL shards; shard 1 is the phase-2 database, the others are new instances",
        PHASE3),
    Key("dbShardInstanceClass", "shards", "instance_class", DB_CLASS,
        Derived(lambda _, read: read["dbInstanceClass"], "dbInstanceClass"),
        "RDS class of shards 2 and later (shard 1 keeps dbInstanceClass)", PHASE3),
    # --- edge ---
    Key("certificateArn", "edge", "certificate_arn",
        Text(CERTIFICATE_ARN,
             "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"),
        None, "HTTPS on 443 with this certificate; HTTP then redirects to it"),
    Key("publicHostname", "edge", "public_hostname",
        Text(DOMAIN, "a lowercase DNS name, e.g. api.example.com"), None,
        "The name users and SNS reach the app by; its DNS record points at the ALB"),
    Key("albDeletionProtection", "edge", "alb_deletion_protection", Flag(), False,
        "Deletion protection on the load balancer"),
    Key("wafEnabled", "edge", "waf_enabled", Flag(),
        Derived(_production, "the value of production"),
        "AWS WAF on the load balancer: AWS managed rule sets and a per-IP rate limit"),
    Key("wafRateLimit", "edge", "waf_rate_limit", Integer(minimum=100, maximum=2_000_000_000),
        2000, "Requests one IP may send in 5 minutes before WAF blocks it"),
    # --- API access (the web front end's sign-in) ---
    Key("corsOrigins", "api", "cors_origins",
        Text(ORIGINS, "comma-separated https origins, e.g. https://app.example.com"), None,
        "Front-end origins browsers may call the API from (none by default)"),
    Key("oidcIssuer", "api", "oidc_issuer", Text(HTTPS_URL, "an https URL"), None,
        "Issuer of the front end's OIDC access tokens (with oidcAudience and oidcJwksUrl)"),
    Key("oidcAudience", "api", "oidc_audience", AnyText("the tokens' audience"), None,
        "The audience those tokens must carry"),
    Key("oidcJwksUrl", "api", "oidc_jwks_url", Text(HTTPS_URL, "an https URL"), None,
        "Where the issuer publishes its signing keys (JWKS)"),
    Key("oidcWorkspaceClaim", "api", "oidc_workspace_claim",
        Text(r"^[A-Za-z0-9_:/.-]{1,100}$", "a claim name"), "workspace",
        "The token claim that names the caller's workspace"),
    # --- mail ---
    Key("senderDomain", "mail", "sender_domain",
        Text(DOMAIN, "a lowercase DNS domain, e.g. mail.example.com"), None,
        "SES identity to send from; unset, the app logs emails instead of sending them"),
    Key("mailFrom", "mail", "mail_from", Text(EMAIL, "an email address"), None,
        "The From address (default outreach@<senderDomain>)"),
    Key("feedbackWebhook", "mail", "feedback_webhook", Flag(), False,
        "Subscribe the app's /webhooks/ses to SES feedback; SNS confirms only through DNS "
        "that already points at the ALB, so turn it on in a second `pulumi up`"),
    # --- observability ---
    Key("alertEmail", "observability", "alert_email", Text(EMAIL, "an email address"), None,
        "Subscribed to the alarms topic (AWS sends a confirmation link first)", LATER),
    # --- the EKS cluster (phase 3) ---
    Key("eksVersion", "cluster", "version",
        Text(r"^1\.\d{2}$", "a Kubernetes minor version, e.g. 1.35"), "1.35",
        "Kubernetes version of the control plane and nodes; keep it in standard support "
        "(`coldreach cost` warns when it is not)", PHASE3),
    Key("eksSupportType", "cluster", "support_type",
        Text(r"^(STANDARD|EXTENDED)$", "STANDARD or EXTENDED"),
        Derived(lambda _, read: "EXTENDED" if read["production"] else "STANDARD",
                "EXTENDED on production stacks, else STANDARD"),
        "At the end of standard support: STANDARD upgrades the control plane, EXTENDED keeps the "
        "version at $0.60 instead of $0.10 per cluster-hour", PHASE3),
    Key("eksPublicAccessCidrs", "cluster", "public_access_cidrs",
        Text(CIDR_LIST, "comma-separated IPv4 networks, e.g. 203.0.113.0/24,198.51.100.7/32"), None,
        "Networks that may reach the cluster's public API endpoint (the deploy runners); unset, "
        "the endpoint is private only and deploys must run inside the VPC", PHASE3),
    Key("eksAdminRoleArns", "cluster", "admin_role_arns",
        Text(ROLE_ARNS, "comma-separated IAM role ARNs"), None,
        "Roles with cluster-admin access entries; unset, the role running `pulumi up` (the deploy "
        "role in CI)", PHASE3),
    Key("eksNodeInstanceType", "cluster", "node_instance_type",
        Text(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", "an EC2 instance type such as m6i.large"),
        "m6i.large", "Node instance type: one that supports security groups for pods (no t "
        "family), of the image's architecture (x86_64)", PHASE3),
    Key("eksNodeCount", "cluster", "node_count", Integer(maximum=100),
        Derived(lambda _, read: 3 if read["production"] else 2, "3 on production stacks, else 2"),
        "Nodes the group starts with, and its minimum", PHASE3),
    Key("eksNodeMaxCount", "cluster", "node_max_count", Integer(maximum=100),
        Derived(lambda _, read: 2 * read["eksNodeCount"], "twice eksNodeCount"),
        "Most nodes the group may grow to", PHASE3),
    Key("eksNodeDiskGb", "cluster", "node_disk_gb", Integer(minimum=20, maximum=1000), 20,
        "Encrypted gp3 root volume of each node (GiB)", PHASE3),
    Key("eksTrafficPercent", "cluster", "traffic_percent", Integer(minimum=0, maximum=100), 0,
        "Share of the load balancer's requests the cluster's API receives (the rest go to ECS "
        "until cold-reach:retireEcs)", PHASE3),
    # --- tooling ---
    Key("costAssumptions", "tooling", "cost_assumptions",
        JsonObject("a JSON object of usage assumptions (see coldreach/data/prices.yaml)"), None,
        "Usage assumptions for `coldreach cost` (traffic, storage, requests); no resource"),
]  # fmt: skip

SCHEMA = Schema(KEYS)
