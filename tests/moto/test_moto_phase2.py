"""Phase 2 deployed into moto once: prod, with every option on (SES/SNS mail, HTTPS),
so every type phase 2 can declare goes through moto. Verify passes, then the phase-2
misconfigurations are injected one at a time through boto3 and undone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_helpers import EVERYTHING, Deployed, deployed, describe, failures


@pytest.fixture(scope="module")
def prod() -> Iterator[Deployed]:
    with deployed("prod", overrides=EVERYTHING) as d:
        yield d


def test_phase_2_passes_every_check(prod: Deployed) -> None:
    findings = prod.verify()
    assert failures(findings) == [], describe(findings)
    checks = {f.check for f in findings}
    assert {"rds.replica", "sg.redis_ingress", "redis.tls", "redis.encrypted", "redis.private"} <= (
        checks
    )
    services = {f.resource for f in findings if f.check == "ecs.desired_count"}
    assert services == {prod.outputs["web_service_name"], prod.outputs["worker_service_name"]}


def test_the_replica_replicates_the_primary_in_moto(prod: Deployed) -> None:
    rds = prod.client("rds")
    replica = rds.describe_db_instances(DBInstanceIdentifier=prod.outputs["db_replica_identifier"])[
        "DBInstances"
    ][0]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == prod.outputs["db_identifier"]
    assert replica["BackupRetentionPeriod"] == 14 and replica["DeletionProtection"]


def test_scaling_targets_and_redis_exist_in_moto(prod: Deployed) -> None:
    targets = prod.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs"
    )["ScalableTargets"]
    assert {(t["MinCapacity"], t["MaxCapacity"]) for t in targets} == {(3, 10), (2, 10)}
    [group] = prod.client("elasticache").describe_replication_groups()["ReplicationGroups"]
    assert group["NodeGroups"][0]["PrimaryEndpoint"]["Address"] == prod.outputs["redis_endpoint"]
    assert group["AutomaticFailover"] == "enabled" and group["MultiAZ"] == "enabled"


def test_mail_and_https_exist_in_moto(prod: Deployed) -> None:
    assert prod.outputs["url"].startswith("https://")
    assert prod.outputs["mail_dkim_records"], "DKIM tokens come back from moto's SES"
    identity = prod.client("sesv2").get_email_identity(EmailIdentity="mail.example.com")
    assert identity["ConfigurationSetName"] == "cold-reach-prod"
    listeners = prod.client("elbv2").describe_listeners(
        LoadBalancerArn=prod.deployment.named("edge-alb").id
    )["Listeners"]
    assert {(x["Port"], x["Protocol"]) for x in listeners} == {(443, "HTTPS"), (80, "HTTP")}
    topics = prod.client("sns").list_topics()["Topics"]
    assert sorted(t["TopicArn"] for t in topics) == sorted(
        prod.deployment.named(n).id for n in ("mail-feedback", "alerts-topic")
    )


def test_stuck_sends_alarm_notifies_the_alerts_topic(prod: Deployed) -> None:
    alarms = prod.client("cloudwatch").describe_alarms()["MetricAlarms"]
    [alarm] = [a for a in alarms if a.get("MetricName") == "StuckSendingEmails"]
    topic = prod.outputs["alerts_topic_arn"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("ColdReach/prod", "StuckSendingEmails")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0.0)
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]


def test_missing_replica_is_named(prod: Deployed) -> None:
    rds, replica = prod.client("rds"), prod.outputs["db_replica_identifier"]
    before = rds.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0]
    rds.modify_db_instance(DBInstanceIdentifier=replica, DeletionProtection=False)
    rds.delete_db_instance(DBInstanceIdentifier=replica, SkipFinalSnapshot=True)
    try:
        findings = prod.verify()
    finally:
        rds.create_db_instance_read_replica(
            DBInstanceIdentifier=replica,
            SourceDBInstanceIdentifier=prod.outputs["db_identifier"],
            DBInstanceClass=before["DBInstanceClass"],
            VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in before["VpcSecurityGroups"]],
        )
        rds.modify_db_instance(
            DBInstanceIdentifier=replica,
            BackupRetentionPeriod=before["BackupRetentionPeriod"],
            DeletionProtection=True,
        )
    [missing] = failures(findings)
    assert (missing.check, missing.resource) == ("rds.replica", replica)
    assert "not found" in missing.detail


def test_redis_without_tls_is_named(prod: Deployed) -> None:
    """moto cannot switch TLS off on the existing group (ModifyReplicationGroup ignores
    it), so a group without TLS is created beside it in the stack's subnets. Its node is
    added as a cache cluster, as AWS lists it, which is how verify finds it in the VPC."""
    elasticache = prod.client("elasticache")
    subnets = prod.deployment.named("cache-subnets").id
    elasticache.create_replication_group(
        ReplicationGroupId="rogue-plaintext",
        ReplicationGroupDescription="no TLS",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheClusters=1,
        CacheSubnetGroupName=subnets,
        SecurityGroupIds=[prod.group_id("cache-sg")],
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
        findings = prod.verify()
    finally:
        elasticache.delete_cache_cluster(CacheClusterId="rogue-plaintext-001")
        elasticache.delete_replication_group(ReplicationGroupId="rogue-plaintext")
    [plaintext] = failures(findings)
    assert (plaintext.check, plaintext.resource) == ("redis.tls", "rogue-plaintext")
    assert "TLS OFF" in plaintext.detail


def test_data_subnets_routed_to_the_internet_are_named(prod: Deployed) -> None:
    """A route to the internet gateway makes a subnet public, whatever its other routes."""
    ec2 = prod.client("ec2")
    table, igw = prod.deployment.named("net-private-rt-1").id, prod.deployment.named("net-igw").id
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="198.51.100.0/24", GatewayId=igw)
    try:
        findings = prod.verify()
    finally:
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock="198.51.100.0/24")
    assert {(f.check, f.resource) for f in failures(findings)} == {
        ("rds.private", f"{prod.outputs['db_identifier']} (primary)"),
        ("rds.private", f"{prod.outputs['db_replica_identifier']} (replica)"),
        ("redis.private", prod.deployment.named("cache-redis").id),
    }


def test_redis_group_rule_from_a_non_app_group_is_named(prod: Deployed) -> None:
    ec2 = prod.client("ec2")
    cache_sg, alb_sg = prod.group_id("cache-sg"), prod.group_id("edge-sg")
    rule = [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
             "UserIdGroupPairs": [{"GroupId": alb_sg}]}]  # fmt: skip
    ec2.authorize_security_group_ingress(GroupId=cache_sg, IpPermissions=rule)
    try:
        findings = prod.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=cache_sg, IpPermissions=rule)
    assert len(failures(findings)) == 1, describe(findings)
    [ingress] = failures(findings)
    assert ingress.check == "sg.redis_ingress" and cache_sg in ingress.resource
    assert f"from {alb_sg}, not one of the groups of web, worker" in ingress.detail


def test_a_service_the_topology_does_not_let_in_is_named(prod: Deployed) -> None:
    """The rules are checked against the declaration, not against "any ECS service": were
    the database declared for the web alone, the worker's rule would be a finding."""
    import copy

    from coldreach import verify

    outputs = copy.deepcopy(prod.outputs)
    outputs["topology"]["tiers"]["database"]["admits"] = ["web"]
    findings = verify.verify(outputs, prod.aws)
    [ingress] = failures(findings)
    worker_sg = prod.group_id("worker-sg")
    assert ingress.check == "sg.db_ingress"
    assert f"from {worker_sg}, not one of the groups of web" in ingress.detail


def test_service_with_a_public_ip_in_phase_2_is_named(prod: Deployed) -> None:
    ecs = prod.client("ecs")
    cluster, worker = prod.outputs["cluster_name"], prod.outputs["worker_service_name"]
    service = ecs.describe_services(cluster=cluster, services=[worker])["services"][0]
    network = service["networkConfiguration"]
    public = {
        "awsvpcConfiguration": {**network["awsvpcConfiguration"], "assignPublicIp": "ENABLED"}
    }
    ecs.update_service(cluster=cluster, service=worker, networkConfiguration=public)
    try:
        findings = prod.verify()
    finally:
        ecs.update_service(cluster=cluster, service=worker, networkConfiguration=network)
    [public_ip] = failures(findings)
    assert (public_ip.check, public_ip.resource) == ("ecs.public_ip", worker)
    assert "phase 2" in public_ip.detail


def test_db_group_open_to_the_world_is_named_in_phase_2(prod: Deployed) -> None:
    ec2, db_sg = prod.client("ec2"), prod.group_id("db-sg")
    rule = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    try:
        findings = prod.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    assert {f.check for f in failures(findings)} == {"sg.db_ingress", "sg.world_open"}
    assert "all traffic" in failures(findings, "sg.world_open")[0].detail


def test_desired_count_outside_the_autoscaling_bounds_is_named(prod: Deployed) -> None:
    ecs = prod.client("ecs")
    cluster, web = prod.outputs["cluster_name"], prod.outputs["web_service_name"]
    ecs.update_service(cluster=cluster, service=web, desiredCount=11)
    try:
        findings = prod.verify()
    finally:
        ecs.update_service(cluster=cluster, service=web, desiredCount=3)
    [count] = failures(findings)
    assert (count.check, count.resource) == ("ecs.desired_count", web)
    assert "outside the bounds" in count.detail


def test_injections_were_undone(prod: Deployed) -> None:
    findings = prod.verify()
    assert failures(findings) == [], describe(findings)
