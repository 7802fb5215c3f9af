"""Who runs, and who may reach what: the one declaration of the system's shape.

"Who may reach the database?" is answered here and nowhere else. Security-group
rules, IAM grants, secrets and environment wiring and the connection arithmetic
are derived from it by the program; the stack exports it as the `topology`
output, the security groups carry it as tags (`coldreach:node`,
`coldreach:admits`), and the policy pack and `coldreach verify` check the
deployed rules against it. Nothing reaches a data tier unless a service below
names it in `reaches`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from infra.phases import Features

INTERNET = "internet"
EDGE = "edge"
"""The internet-facing load balancer."""
AWS_APIS = "aws-apis"
"""AWS's public endpoints over HTTPS (ECR, Secrets Manager, CloudWatch, SES)."""


class Kind(StrEnum):
    HTTP_API = "http-api"
    WORKER = "worker"
    GRPC = "grpc"


class Platform(StrEnum):
    """Where a service runs: an ECS Fargate service, or a Deployment on the EKS cluster."""

    ECS = "ecs"
    EKS = "eks"


@dataclass(frozen=True)
class Tier:
    """A data tier: one security group in front of one or more endpoints."""

    name: str
    engine: str
    port: int
    label: str
    """Protocol name in rule descriptions."""
    exists: Callable[[Features], bool]
    endpoints: tuple[str, ...] = ()
    """Named endpoints behind the same group, e.g. the database's primary and replica."""


@dataclass(frozen=True)
class Reach:
    """One thing a service may reach: a tier (optionally one endpoint of it), another
    service's port, or SES."""

    target: str
    endpoint: str | None = None
    when: Callable[[Features], bool] = lambda f: True

    @property
    def name(self) -> str:
        return f"{self.target}.{self.endpoint}" if self.endpoint else self.target


@dataclass(frozen=True)
class Service:
    name: str
    kind: Kind
    runs: Callable[[Features], bool]
    reaches: tuple[Reach, ...]
    port: int | None = None
    load_balanced: bool = False
    label: str = ""
    """What its listener serves, in rule descriptions."""
    platform: Platform = Platform.ECS
    calls_aws: bool = True
    """Calls AWS's APIs over HTTPS (image pulls, secrets, SES, credentials)."""

    def reaches_now(self, features: Features) -> list[Reach]:
        """What it may reach in this phase: its own conditions, and tiers that exist."""
        found: list[Reach] = []
        for reach in self.reaches:
            if not reach.when(features):
                continue
            tier = TIERS.get(reach.target)
            if tier is not None and not tier.exists(features):
                continue
            peer = _SERVICES_BY_NAME.get(reach.target)
            if peer is not None and not peer.runs(features):
                continue
            if reach.endpoint == "replica" and not features.replica:
                continue
            found.append(reach)
        return found

    def may_reach(self, features: Features, target: str) -> bool:
        return any(r.target == target for r in self.reaches_now(features))

    def database_endpoints(self, features: Features) -> list[str]:
        return [
            r.endpoint or "primary" for r in self.reaches_now(features) if r.target == "database"
        ]


def _always(_: Features) -> bool:
    return True


TIERS: dict[str, Tier] = {
    # Phase 3's shards share the database tier's group: shard 1 is the phase-2 primary, and
    # whoever may reach one shard may reach every shard (a client's bucket decides which).
    "database": Tier(
        "database", "postgres", 5432, "PostgreSQL", _always, ("primary", "replica", "shards")
    ),
    "cache": Tier("cache", "redis", 6379, "Redis", lambda f: f.cache),
    # MSK's IAM-authenticated TLS listener: the only one the cluster opens.
    "kafka": Tier("kafka", "kafka", 9098, "Kafka (TLS, IAM)", lambda f: f.kafka),
}

SES = "ses"
"""Sending mail from the stack's SES identity (an IAM grant, not a network flow)."""

ROTATION = "db-rotation"
"""The function that rotates the database's master password (Lambda, private subnets)."""
SECRETS_ENDPOINT = "secrets-endpoint"
"""Secrets Manager's interface endpoint: the rotation function's only way out."""


def _sends_inline(f: Features) -> bool:
    return f.queue == "inline"


def _celery(f: Features) -> bool:
    return f.ecs and f.queue == "celery"


def _ecs(f: Features) -> bool:
    return f.ecs


def _cluster(f: Features) -> bool:
    return f.cluster


def _tracing(f: Features) -> bool:
    return f.tracing


# Phase 3's services on the cluster: the same HTTP API, the Client and Campaign services it
# calls over gRPC, the sender fleet consuming Kafka, and the tracing backend they all export to.
GRPC_CLIENTS_PORT = 50051
GRPC_CAMPAIGNS_PORT = 50052
OTLP_PORT = 4317


SERVICES: tuple[Service, ...] = (
    Service(
        "web",
        Kind.HTTP_API,
        runs=_ecs,
        port=8000,
        load_balanced=True,
        label="HTTP to the API",
        reaches=(
            Reach("database", "primary"),
            # List reads only; email status is always read from the primary.
            Reach("database", "replica"),
            # Enqueues sends for the worker.
            Reach("cache", when=_celery),
            # Sends itself only while background work runs in its process.
            Reach(SES, when=_sends_inline),
        ),
    ),
    Service(
        "worker",
        Kind.WORKER,
        runs=_celery,
        reaches=(Reach("database", "primary"), Reach("cache"), Reach(SES)),
    ),
    Service(
        "api",
        Kind.HTTP_API,
        runs=_cluster,
        port=8000,
        load_balanced=True,
        label="HTTP to the API",
        platform=Platform.EKS,
        reaches=(
            # The directory (workspaces, API keys, quotas, the bucket map) lives on shard 1's
            # instance; unsubscribe links find their client on its own shard.
            Reach("database", "shards"),
            Reach("clients"),
            Reach("campaigns"),
            Reach("tracing", when=_tracing),
        ),
    ),
    Service(
        "clients",
        Kind.GRPC,
        runs=_cluster,
        port=GRPC_CLIENTS_PORT,
        label="gRPC to the Client Service",
        platform=Platform.EKS,
        reaches=(Reach("database", "shards"), Reach("tracing", when=_tracing)),
    ),
    Service(
        "campaigns",
        Kind.GRPC,
        runs=_cluster,
        port=GRPC_CAMPAIGNS_PORT,
        label="gRPC to the Campaign Service",
        platform=Platform.EKS,
        reaches=(
            Reach("database", "shards"),
            # Validates a task's client with GetClient.
            Reach("clients"),
            # Its outbox relay publishes send requests.
            Reach("kafka"),
            Reach("tracing", when=_tracing),
        ),
    ),
    Service(
        "sender",
        Kind.WORKER,
        runs=_cluster,
        platform=Platform.EKS,
        reaches=(
            Reach("database", "shards"),
            Reach("kafka"),
            Reach(SES),
            Reach("tracing", when=_tracing),
        ),
    ),
    Service(
        "tracing",
        Kind.GRPC,
        runs=lambda f: f.cluster and f.tracing,
        port=OTLP_PORT,
        label="OTLP to the tracing backend",
        platform=Platform.EKS,
        reaches=(),
        # Stores spans in the cluster: no AWS API to call.
        calls_aws=False,
    ),
)
_SERVICES_BY_NAME = {s.name: s for s in SERVICES}


@dataclass(frozen=True)
class Flow:
    """Traffic one security group admits from another (or from the internet)."""

    source: str
    target: str
    port: int
    label: str

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "port": self.port}


@dataclass(frozen=True)
class Topology:
    """The declaration as it stands in one phase."""

    features: Features
    services: tuple[Service, ...]
    tiers: tuple[Tier, ...]
    rotation: bool = False
    """The master password rotates: the rotation function reaches the database."""

    def on(self, platform: Platform) -> list[Service]:
        return [s for s in self.services if s.platform is platform]

    def flows(self) -> list[Flow]:
        """Every network flow: internet -> edge -> services -> tiers, and out to AWS's APIs."""
        found = [
            Flow(INTERNET, EDGE, 443, "HTTPS from the internet"),
            Flow(INTERNET, EDGE, 80, "HTTP from the internet"),
        ]
        for s in self.services:
            if s.load_balanced and s.port is not None:
                found.append(Flow(EDGE, s.name, s.port, s.label))
        for s in self.services:
            seen: set[str] = set()
            for reach in s.reaches_now(self.features):
                tier = TIERS.get(reach.target)
                peer = _SERVICES_BY_NAME.get(reach.target)
                if tier is not None and tier.name not in seen:
                    # A tier's endpoints share one group: one flow for all of them.
                    seen.add(tier.name)
                    found.append(Flow(s.name, tier.name, tier.port, tier.label))
                elif peer is not None and peer.port is not None:
                    found.append(Flow(s.name, peer.name, peer.port, peer.label))
                # SES is an IAM grant, not a flow.
            if s.calls_aws:
                found.append(Flow(s.name, AWS_APIS, 443, "HTTPS to AWS APIs"))
        if self.rotation:
            db = TIERS["database"]
            found.append(Flow(ROTATION, db.name, db.port, f"{db.label} (rotates the password)"))
            found.append(Flow(ROTATION, SECRETS_ENDPOINT, 443, "HTTPS to Secrets Manager"))
        return found

    def flows_on(self, platform: Platform) -> list[Flow]:
        """The flows with an end on a service of `platform`: what that platform's layer wires."""
        names = {s.name for s in self.on(platform)}
        return [f for f in self.flows() if f.source in names or f.target in names]

    def admits(self, node: str) -> list[str]:
        """The sources a node's security group admits, in declaration order."""
        sources: list[str] = []
        for flow in self.flows():
            if flow.target == node and flow.source not in sources:
                sources.append(flow.source)
        return sources

    def tags(self, node: str) -> dict[str, str]:
        """Tags on a node's security group, so the policy pack can check rules against the
        declaration without the stack's outputs."""
        return {"coldreach:node": node, "coldreach:admits": " ".join(self.admits(node))}

    def to_json(self) -> dict[str, Any]:
        """The `topology` stack output."""
        return {
            "services": {
                s.name: {
                    "kind": s.kind.value,
                    "platform": s.platform.value,
                    "port": s.port,
                    "load_balanced": s.load_balanced,
                    "reaches": [r.name for r in s.reaches_now(self.features)],
                }
                for s in self.services
            },
            "tiers": {
                t.name: {"engine": t.engine, "port": t.port, "admits": self.admits(t.name)}
                for t in self.tiers
            },
            "flows": [f.to_json() for f in self.flows()],
            "functions": {ROTATION: {"reaches": ["database", SECRETS_ENDPOINT]}}
            if self.rotation
            else {},
        }


def running(features: Features, platform: Platform | None = None) -> list[Service]:
    return [s for s in SERVICES if s.runs(features) and platform in (None, s.platform)]


def declare(features: Features, *, rotation: bool = False) -> Topology:
    return Topology(
        features,
        tuple(running(features)),
        tuple(t for t in TIERS.values() if t.exists(features)),
        rotation,
    )
