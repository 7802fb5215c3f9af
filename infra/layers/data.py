"""The data layer: the PostgreSQL primary (and its replica), Redis when the phase has it,
and in phase 3 the further shards and MSK, and the rotation of the master password
once the services no longer use it.

Each group here admits nothing; the compute layers open it to exactly the nodes the
topology names. Every shard sits behind the database tier's one group: shard 1 is the
phase-2 primary (same URN, never replaced), and whoever may reach one shard may reach
them all (a client's bucket decides which).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pulumi

from components.cache import Cache, CacheArgs
from components.database import Database, DatabaseArgs
from components.firewall import SecurityGroup
from components.kafka import Kafka, KafkaArgs
from components.network import Network
from components.rotation import MasterRotation, RotationArgs
from infra.config import Settings
from infra.topology import ROTATION, SECRETS_ENDPOINT, Topology


@dataclass
class Data:
    """What the later layers use. The cluster's workloads take, for phase 3:
    `security_group(tier)` to open a tier to a pod security group (`firewall.connect`),
    `shards` (address, `credentials` secret, `secret_arn` per shard, shard 1 first) and
    `kafka` (`cluster.arn`, `bootstrap_brokers`, `topics[name].arn` for per-topic IAM)."""

    database: Database
    cache: Cache | None
    shards: list[Database] = field(default_factory=list)
    """Shard 1 (the database itself) first; empty before phase 3."""
    kafka: Kafka | None = None
    rotation: MasterRotation | None = None

    def security_group(self, node: str) -> SecurityGroup:
        if node == "database":
            return self.database.security_group
        if node == "cache" and self.cache is not None:
            return self.cache.security_group
        if node == "kafka" and self.kafka is not None:
            return self.kafka.security_group
        if node == ROTATION and self.rotation is not None:
            return self.rotation.security_group
        if node == SECRETS_ENDPOINT and self.rotation is not None:
            return self.rotation.endpoint_security_group
        raise KeyError(f"no security group for {node!r} in this stack")

    def groups(self, topology: Topology) -> dict[str, SecurityGroup]:
        """The security group of every node of this layer the topology declares."""
        nodes = [t.name for t in topology.tiers]
        if topology.rotation:
            nodes += [ROTATION, SECRETS_ENDPOINT]
        return {node: self.security_group(node) for node in nodes}

    def outputs(self) -> dict[str, pulumi.Input[object]]:
        """What the phase-3 workloads read: shard endpoints and credentials, MSK's cluster,
        brokers and topics (names agreed with the cluster layer)."""
        found: dict[str, pulumi.Input[object]] = {}
        if self.shards:
            found["shard_endpoints"] = [shard.address for shard in self.shards]
            found["shard_secret_arns"] = [shard.secret_arn for shard in self.shards]
        if self.kafka is not None:
            found["kafka_cluster_arn"] = self.kafka.cluster.arn
            found["kafka_bootstrap_brokers"] = self.kafka.bootstrap_brokers
            found["kafka_topics"] = [spec.to_json() for spec in self.kafka.specs]
        return found


def _database_args(s: Settings, topology: Topology, net: Network) -> DatabaseArgs:
    db = s.database
    return DatabaseArgs(
        vpc_id=net.vpc.id,
        subnet_ids=net.private_subnet_ids,
        instance_class=db.instance_class,
        engine_version=db.engine_version,
        allocated_storage_gb=db.allocated_storage_gb,
        max_allocated_storage_gb=db.max_allocated_storage_gb,
        backup_retention_days=db.backup_retention_days,
        multi_az=db.multi_az,
        protect=s.protect,
        replica_instance_class=db.replica_instance_class if s.features.replica else None,
        security_group_tags=topology.tags("database"),
    )


def _shards(s: Settings, base: DatabaseArgs, first: Database) -> list[Database]:
    """Shard 1 is `first`; shards 2.. share its hardening and its group, each with its own
    subnet group, parameter group, password and credentials secret, and no replica (reads
    go to the primary until one is needed)."""
    further = [
        Database(
            f"shard{number}",
            replace(
                base,
                instance_class=s.shards.instance_class,
                replica_instance_class=None,
                security_group=first.security_group,
            ),
        )
        for number in range(2, s.shards.count + 1)
    ]
    return [first, *further]


def build(s: Settings, topology: Topology, net: Network) -> Data:
    args = _database_args(s, topology, net)
    database = Database("db", args)
    cache = None
    if s.features.cache:
        cache = Cache(
            "cache",
            CacheArgs(
                vpc_id=net.vpc.id,
                subnet_ids=net.private_subnet_ids,
                node_type=s.cache.node_type,
                nodes=s.cache.nodes,
                protect=s.protect,
                security_group_tags=topology.tags("cache"),
            ),
        )
    shards = _shards(s, args, database) if s.features.shards else []
    kafka = None
    if s.features.kafka:
        k = s.kafka
        kafka = Kafka(
            "kafka",
            KafkaArgs(
                vpc_id=net.vpc.id,
                subnet_ids=net.private_subnet_ids,
                version=k.version,
                broker_type=k.broker_type,
                brokers=k.brokers,
                storage_gb=k.storage_gb,
                log_retention_days=s.log_retention_days,
                protect=s.protect,
                security_group_tags=topology.tags("kafka"),
            ),
        )
    rotation = None
    if topology.rotation:
        rotation = MasterRotation(
            "db-rotation",
            RotationArgs(
                secret=database.credentials,
                vpc_id=net.vpc.id,
                subnet_ids=net.private_subnet_ids,
                log_retention_days=s.log_retention_days,
                security_group_tags=topology.tags(ROTATION),
                endpoint_tags=topology.tags(SECRETS_ENDPOINT),
            ),
            # The database owns its password's rotation, as it owns the secret.
            opts=pulumi.ResourceOptions(parent=database),
        )
    return Data(database, cache, shards, kafka, rotation)
