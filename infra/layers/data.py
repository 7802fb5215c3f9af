"""The data layer: the PostgreSQL primary (and its replica), Redis when the phase has it,
and the rotation of the master password once the services no longer use it.

Each group here admits nothing; the compute layer opens it to exactly the nodes the
topology names.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.cache import Cache, CacheArgs
from components.database import Database, DatabaseArgs
from components.firewall import SecurityGroup
from components.network import Network
from components.rotation import MasterRotation, RotationArgs
from infra.config import Settings
from infra.topology import ROTATION, SECRETS_ENDPOINT, Topology


@dataclass
class Data:
    database: Database
    cache: Cache | None
    rotation: MasterRotation | None = None

    def security_group(self, node: str) -> SecurityGroup:
        if node == "database":
            return self.database.security_group
        if node == "cache" and self.cache is not None:
            return self.cache.security_group
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


def build(s: Settings, topology: Topology, net: Network) -> Data:
    db = s.database
    database = Database(
        "db",
        DatabaseArgs(
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
        ),
    )
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
    return Data(database, cache, rotation)
