"""Redis on ElastiCache: the Celery broker of phase 2. Private, TLS-only, authenticated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.firewall import SecurityGroup
from components.secrets import GeneratedSecret, StoredSecret, stored_secret

PORT = 6379


@dataclass
class CacheArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets only."""
    node_type: str
    nodes: int
    """1 = a single primary; 2 or more = primary plus replicas with automatic failover."""
    protect: bool
    engine_version: str = "7.1"
    snapshot_retention_days: int = 7
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on the security group (the topology node it is, whom it admits)."""


class Cache(pulumi.ComponentResource):
    """An ElastiCache Redis replication group with encryption in transit and at rest.

    The auth token is generated and kept in Secrets Manager; the app gets the
    whole `rediss://` URL (token included) as one ECS secret. Nothing gets in
    until a caller opens the security group to another group.

    Logical names are lowercase: ElastiCache lowercases the names it is given,
    and a name that differs only in case would show as a diff on every refresh.
    """

    replication_group: aws.elasticache.ReplicationGroup
    security_group: SecurityGroup
    url: StoredSecret
    """The whole `rediss://` URL, auth token included."""

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:cache:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        highly_available = args.nodes >= 2

        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(args.subnet_ids),
            description=f"{name}: private subnets",
            opts=child,
        )
        self.security_group = SecurityGroup(
            f"{name}-sg",
            f"{name}: Redis, reachable only from the app",
            args.vpc_id,
            self,
            args.security_group_tags,
        )
        token = GeneratedSecret(
            f"{name}-auth-token",
            f"{name}: Redis AUTH token",
            protect=args.protect,
            length=64,
            opts=child,
        )
        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            description=f"{name}: Celery broker",
            engine="redis",
            engine_version=args.engine_version,
            node_type=args.node_type,
            num_cache_clusters=args.nodes,
            automatic_failover_enabled=highly_available,
            multi_az_enabled=highly_available,
            port=PORT,
            subnet_group_name=subnet_group.name,
            security_group_ids=[self.security_group.id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token.value.result,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="03:00-04:00",
            maintenance_window="sun:05:00-sun:06:00",
            auto_minor_version_upgrade=True,
            opts=stateful,
        )

        url = pulumi.Output.format(
            "rediss://:{0}@{1}:{2}/0",
            token.value.result,
            self.replication_group.primary_endpoint_address,
            PORT,
        )
        self.url = stored_secret(
            f"{name}-url",
            f"{name}: rediss:// URL for the app, auth token included",
            url,
            args.protect,
            parent=self,
        )
        self.register_outputs(
            {
                "primary_endpoint": self.replication_group.primary_endpoint_address,
                "url_secret_arn": self.url.secret.arn,
                "security_group_id": self.security_group.id,
            }
        )
