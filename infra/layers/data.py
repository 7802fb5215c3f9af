"""The data layer: the PostgreSQL primary (and its replica), and Redis when the phase has it.

Each tier's security group admits nothing here; the compute layer opens it to
exactly the services the topology names.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.cache import Cache, CacheArgs
from components.database import Database, DatabaseArgs
from components.firewall import SecurityGroup
from components.network import Network
from infra.config import Settings
from infra.topology import Topology


@dataclass
class Data:
    database: Database
    cache: Cache | None

    def security_group(self, tier: str) -> SecurityGroup:
        if tier == "database":
            return self.database.security_group
        if tier == "cache" and self.cache is not None:
            return self.cache.security_group
        raise KeyError(f"no security group for tier {tier!r} in this phase")


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
    return Data(database, cache)
