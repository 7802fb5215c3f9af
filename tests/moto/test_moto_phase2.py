"""Phase 2 (staging) deployed into moto once: verify passes, then the phase-2
misconfigurations are injected one at a time through boto3 and undone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_helpers import Deployed, deployed, describe, failures


@pytest.fixture(scope="module")
def staging() -> Iterator[Deployed]:
    with deployed("staging") as d:
        yield d


def test_phase_2_passes_every_check(staging: Deployed) -> None:
    findings = staging.verify()
    assert failures(findings) == [], describe(findings)
    checks = {f.check for f in findings}
    assert {"rds.replica", "sg.redis_ingress", "redis.tls", "redis.encrypted"} <= checks
    services = {f.resource for f in findings if f.check == "ecs.desired_count"}
    assert services == {staging.outputs["web_service_name"], staging.outputs["worker_service_name"]}


def test_the_replica_replicates_the_primary_in_moto(staging: Deployed) -> None:
    rds = staging.client("rds")
    replica = rds.describe_db_instances(
        DBInstanceIdentifier=staging.outputs["db_replica_identifier"]
    )["DBInstances"][0]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == staging.outputs["db_identifier"]
    assert replica["BackupRetentionPeriod"] == 7 and replica["DeletionProtection"]


def test_scaling_targets_and_redis_exist_in_moto(staging: Deployed) -> None:
    targets = staging.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs"
    )["ScalableTargets"]
    assert {(t["MinCapacity"], t["MaxCapacity"]) for t in targets} == {(2, 4), (1, 4)}
    [group] = staging.client("elasticache").describe_replication_groups()["ReplicationGroups"]
    assert group["NodeGroups"][0]["PrimaryEndpoint"]["Address"] == staging.outputs["redis_endpoint"]


def test_missing_replica_is_named(staging: Deployed) -> None:
    rds, replica = staging.client("rds"), staging.outputs["db_replica_identifier"]
    before = rds.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0]
    rds.modify_db_instance(DBInstanceIdentifier=replica, DeletionProtection=False)
    rds.delete_db_instance(DBInstanceIdentifier=replica, SkipFinalSnapshot=True)
    try:
        findings = staging.verify()
    finally:
        rds.create_db_instance_read_replica(
            DBInstanceIdentifier=replica,
            SourceDBInstanceIdentifier=staging.outputs["db_identifier"],
            DBInstanceClass=before["DBInstanceClass"],
            VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in before["VpcSecurityGroups"]],
        )
        rds.modify_db_instance(
            DBInstanceIdentifier=replica, BackupRetentionPeriod=7, DeletionProtection=True
        )
    [missing] = failures(findings)
    assert (missing.check, missing.resource) == ("rds.replica", replica)
    assert "not found" in missing.detail


def test_redis_without_tls_is_named(staging: Deployed) -> None:
    """moto cannot switch TLS off on the existing group (ModifyReplicationGroup ignores
    it), so a group without TLS is created beside it in the stack's subnets. Its node is
    added as a cache cluster, as AWS lists it, which is how verify finds it in the VPC."""
    elasticache = staging.client("elasticache")
    subnets = staging.deployment.named("cache-subnets").id
    elasticache.create_replication_group(
        ReplicationGroupId="rogue-plaintext",
        ReplicationGroupDescription="no TLS",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheClusters=1,
        CacheSubnetGroupName=subnets,
        SecurityGroupIds=[staging.group_id("cache-sg")],
        TransitEncryptionEnabled=False,
        AtRestEncryptionEnabled=True,
    )
    elasticache.create_cache_cluster(
        CacheClusterId="rogue-plaintext-001",
        ReplicationGroupId="rogue-plaintext",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        CacheSubnetGroupName=subnets,
    )
    try:
        findings = staging.verify()
    finally:
        elasticache.delete_cache_cluster(CacheClusterId="rogue-plaintext-001")
        elasticache.delete_replication_group(ReplicationGroupId="rogue-plaintext")
    [plaintext] = failures(findings)
    assert (plaintext.check, plaintext.resource) == ("redis.tls", "rogue-plaintext")
    assert "TLS OFF" in plaintext.detail


def test_redis_group_rule_from_a_non_app_group_is_named(staging: Deployed) -> None:
    ec2 = staging.client("ec2")
    cache_sg, alb_sg = staging.group_id("cache-sg"), staging.group_id("edge-sg")
    rule = [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
             "UserIdGroupPairs": [{"GroupId": alb_sg}]}]  # fmt: skip
    ec2.authorize_security_group_ingress(GroupId=cache_sg, IpPermissions=rule)
    try:
        findings = staging.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=cache_sg, IpPermissions=rule)
    assert len(failures(findings)) == 1, describe(findings)
    [ingress] = failures(findings)
    assert ingress.check == "sg.redis_ingress" and cache_sg in ingress.resource
    assert f"non-app group {alb_sg}" in ingress.detail


def test_service_with_a_public_ip_in_phase_2_is_named(staging: Deployed) -> None:
    ecs = staging.client("ecs")
    cluster, worker = staging.outputs["cluster_name"], staging.outputs["worker_service_name"]
    service = ecs.describe_services(cluster=cluster, services=[worker])["services"][0]
    network = service["networkConfiguration"]
    public = {
        "awsvpcConfiguration": {**network["awsvpcConfiguration"], "assignPublicIp": "ENABLED"}
    }
    ecs.update_service(cluster=cluster, service=worker, networkConfiguration=public)
    try:
        findings = staging.verify()
    finally:
        ecs.update_service(cluster=cluster, service=worker, networkConfiguration=network)
    [public_ip] = failures(findings)
    assert (public_ip.check, public_ip.resource) == ("ecs.public_ip", worker)
    assert "phase 2" in public_ip.detail


def test_db_group_open_to_the_world_is_named_in_phase_2(staging: Deployed) -> None:
    ec2, db_sg = staging.client("ec2"), staging.group_id("db-sg")
    rule = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    try:
        findings = staging.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    assert {f.check for f in failures(findings)} == {"sg.db_ingress", "sg.world_open"}
    assert "all traffic" in failures(findings, "sg.world_open")[0].detail


def test_desired_count_outside_the_autoscaling_bounds_is_named(staging: Deployed) -> None:
    ecs = staging.client("ecs")
    cluster, web = staging.outputs["cluster_name"], staging.outputs["web_service_name"]
    ecs.update_service(cluster=cluster, service=web, desiredCount=9)
    try:
        findings = staging.verify()
    finally:
        ecs.update_service(cluster=cluster, service=web, desiredCount=2)
    [count] = failures(findings)
    assert (count.check, count.resource) == ("ecs.desired_count", web)
    assert "outside the bounds" in count.detail


def test_injections_were_undone(staging: Deployed) -> None:
    findings = staging.verify()
    assert failures(findings) == [], describe(findings)
