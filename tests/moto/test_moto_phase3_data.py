"""Phase 3's data tiers deployed into moto once (staging): MSK as moto holds it, the shards,
what moto cannot hold listed as rendered, then verify's phase-3 checks with one
misconfiguration at a time injected through boto3 and undone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_helpers import Deployed, deployed, describe, failures


@pytest.fixture(scope="module")
def staging() -> Iterator[Deployed]:
    with deployed("staging", phase=3) as d:
        yield d


def test_msk_and_the_shards_exist_in_moto(staging: Deployed) -> None:
    [cluster] = staging.client("kafka").list_clusters_v2()["ClusterInfoList"]
    assert cluster["ClusterArn"] == staging.outputs["kafka_cluster_arn"]
    info = cluster["Provisioned"]
    assert info["CurrentBrokerSoftwareInfo"]["KafkaVersion"] == "3.9.x.kraft"
    assert info["BrokerNodeGroupInfo"]["SecurityGroups"] == [staging.group_id("kafka-sg")]
    assert info["ClientAuthentication"]["Sasl"]["Iam"] == {"Enabled": True}
    shards = staging.outputs["shard_endpoints"]
    instances = staging.client("rds").describe_db_instances()["DBInstances"]
    addresses = {i["Endpoint"]["Address"]: i for i in instances}
    assert set(shards) <= set(addresses) and len(shards) == 2
    assert addresses[shards[0]]["DBInstanceIdentifier"] == staging.outputs["db_identifier"]


def test_what_moto_cannot_hold_is_listed_as_rendered(staging: Deployed) -> None:
    # The data tiers' part; the cluster's (add-ons, workloads) is tests/moto/test_moto_cluster.py.
    rendered = {(t.split(":")[-1], n) for t, n in staging.backend.rendered if ":msk/" in t}
    assert rendered == {
        ("Configuration", "kafka-config"),
        ("Topic", "kafka-topic-email-send-v1"),
        ("Topic", "kafka-topic-email-events-v1"),
        ("Topic", "kafka-topic-email-send-dlq-v1"),
    }
    created = {n for _, n, _ in staging.backend.created}
    assert "kafka-cluster" in created and not created & {n for _, n in rendered}


def test_phase_3_data_passes_every_check(staging: Deployed) -> None:
    findings = staging.verify()
    assert failures(findings) == [], describe(findings)
    checks = {f.check for f in findings}
    assert {
        "kafka.tls",
        "kafka.auth",
        "kafka.encrypted",
        "kafka.kraft",
        "kafka.logs",
        "kafka.private",
        "sg.kafka_ingress",
        "rds.shards",
    } <= checks
    assert len([f for f in findings if f.check == "rds.shards"]) == 2


def test_kafka_open_to_an_address_range_fails(staging: Deployed) -> None:
    ec2, group = staging.client("ec2"), staging.group_id("kafka-sg")
    rule = {"IpProtocol": "tcp", "FromPort": 9098, "ToPort": 9098,
            "IpRanges": [{"CidrIp": "10.41.0.0/16"}]}  # fmt: skip
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
    try:
        [failed] = failures(staging.verify(), "sg.kafka_ingress")
        assert "from cidr 10.41.0.0/16" in failed.detail
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[rule])
    assert failures(staging.verify()) == []


def test_kafka_reached_by_a_service_the_topology_does_not_name_fails(staging: Deployed) -> None:
    ec2, group = staging.client("ec2"), staging.group_id("kafka-sg")
    rule = {"IpProtocol": "tcp", "FromPort": 9098, "ToPort": 9098,
            "UserIdGroupPairs": [{"GroupId": staging.group_id("web-sg")}]}  # fmt: skip
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
    try:
        [failed] = failures(staging.verify(), "sg.kafka_ingress")
        assert "not one of the groups of campaigns, sender" in failed.detail
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[rule])


def test_a_shard_outside_the_database_tier_fails(staging: Deployed) -> None:
    rds = staging.client("rds")
    shard2 = staging.deployment.named("shard2-instance").id
    other = staging.group_id("web-sg")
    tier = staging.group_id("db-sg")
    rds.modify_db_instance(DBInstanceIdentifier=shard2, VpcSecurityGroupIds=[other])
    try:
        [failed] = failures(staging.verify(), "rds.shards")
        assert "not the database tier's" in failed.detail
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=shard2, VpcSecurityGroupIds=[tier])


def test_a_pod_group_tagged_as_a_named_service_is_admitted(staging: Deployed) -> None:
    """The cluster's pods get security groups of their own; verify knows them by the node
    tag the topology gives them, so `sender` pods may reach Kafka and `api` pods may not."""
    ec2, kafka = staging.client("ec2"), staging.group_id("kafka-sg")
    vpc = staging.outputs["vpc_id"]
    pod = ec2.create_security_group(GroupName="sender-pods", Description="sender", VpcId=vpc)
    pod_id = pod["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 9098, "ToPort": 9098,
            "UserIdGroupPairs": [{"GroupId": pod_id}]}  # fmt: skip
    try:
        ec2.create_tags(Resources=[pod_id], Tags=[{"Key": "coldreach:node", "Value": "sender"}])
        ec2.authorize_security_group_ingress(GroupId=kafka, IpPermissions=[rule])
        [ok] = [f for f in staging.verify() if f.check == "sg.kafka_ingress"]
        assert not ok.failed and pod_id in ok.detail
        ec2.create_tags(Resources=[pod_id], Tags=[{"Key": "coldreach:node", "Value": "api"}])
        [failed] = failures(staging.verify(), "sg.kafka_ingress")
        assert pod_id in failed.detail
    finally:
        ec2.revoke_security_group_ingress(GroupId=kafka, IpPermissions=[rule])
        ec2.delete_security_group(GroupId=pod_id)
    assert failures(staging.verify()) == []
