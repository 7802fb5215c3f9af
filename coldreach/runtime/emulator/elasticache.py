"""ElastiCache: subnet groups and Redis replication groups."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from policies import tokens as t


@handles(t.CACHE_SUBNET_GROUP)
def cache_subnet_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    group = b.client("elasticache").create_cache_subnet_group(
        CacheSubnetGroupName=name,
        CacheSubnetGroupDescription=c.get("description", "Managed by Pulumi"),
        SubnetIds=c.get("subnetIds"),
    )["CacheSubnetGroup"]
    return name, {
        "arn": group.get("ARN") or b.arn("elasticache", f"subnetgroup:{name}"),
        "vpcId": group.get("VpcId"),
    }


@handles(t.REPLICATION_GROUP)
def replication_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    group = b.client("elasticache").create_replication_group(
        **drop_none(
            {
                "ReplicationGroupId": name,
                "ReplicationGroupDescription": c.get("description", "Managed by Pulumi"),
                "Engine": c.get("engine"),
                "EngineVersion": c.get("engineVersion"),
                "CacheNodeType": c.get("nodeType"),
                "NumCacheClusters": c.get("numCacheClusters"),
                "AutomaticFailoverEnabled": c.get("automaticFailoverEnabled"),
                "MultiAZEnabled": c.get("multiAzEnabled"),
                "Port": c.get("port"),
                "CacheSubnetGroupName": c.get("subnetGroupName"),
                "SecurityGroupIds": c.get("securityGroupIds"),
                "AtRestEncryptionEnabled": c.get("atRestEncryptionEnabled"),
                "TransitEncryptionEnabled": c.get("transitEncryptionEnabled"),
                "TransitEncryptionMode": c.get("transitEncryptionMode"),
                "AuthToken": c.get("authToken"),
                "SnapshotRetentionLimit": c.get("snapshotRetentionLimit"),
                "SnapshotWindow": c.get("snapshotWindow"),
                "PreferredMaintenanceWindow": c.get("maintenanceWindow"),
                "AutoMinorVersionUpgrade": c.get("autoMinorVersionUpgrade"),
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["ReplicationGroup"]
    _member_clusters(b, c, group.get("MemberClusters", []))
    groups = group.get("NodeGroups") or [{}]
    primary = (groups[0].get("PrimaryEndpoint") or {}).get("Address")
    reader = (groups[0].get("ReaderEndpoint") or {}).get("Address")
    return name, {
        "arn": group.get("ARN") or b.arn("elasticache", f"replicationgroup:{name}"),
        "primaryEndpointAddress": primary or f"master.{name}.cache.amazonaws.com",
        "readerEndpointAddress": reader or f"replica.{name}.cache.amazonaws.com",
        "memberClusters": group.get("MemberClusters", []),
        "engineVersionActual": c.get("engineVersion"),
    }


def _member_clusters(b: MotoBackend, c: Call, members: list[str]) -> None:
    """AWS lists a replication group's nodes as cache clusters that carry its subnet
    group and security groups; moto does not create them, so they are added here
    (that is where `describe_cache_clusters`, and `coldreach verify`, find them)."""
    elasticache = b.client("elasticache")
    existing = {
        cluster["CacheClusterId"]
        for cluster in elasticache.describe_cache_clusters()["CacheClusters"]
    }
    for member in members:
        if member in existing:
            continue
        elasticache.create_cache_cluster(
            **drop_none(
                {
                    "CacheClusterId": member,
                    "ReplicationGroupId": c.get("replicationGroupId")
                    or c.outputs.get("replicationGroupId"),
                    "Engine": c.get("engine"),
                    "EngineVersion": c.get("engineVersion"),
                    "CacheNodeType": c.get("nodeType"),
                    "CacheSubnetGroupName": c.get("subnetGroupName"),
                    "SecurityGroupIds": c.get("securityGroupIds"),
                    "Port": c.get("port"),
                    "TransitEncryptionEnabled": c.get("transitEncryptionEnabled"),
                }
            )
        )
