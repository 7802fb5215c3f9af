"""Phase 3's data tiers: MSK and the shards, for staging and prod, and the promotion from
phase 2 that must keep every stateful resource (shard 1 is the phase-2 database)."""

from __future__ import annotations

import json

import pytest

from coldreach import graph
from coldreach.replacement import compare, forced_replacements
from coldreach.runtime import Deployment
from coldreach.runtime.model import Resource
from components import kafka as msk
from infra import phases, topology
from infra.config import ConfigError, parse

STACKS = ("staging", "prod")
MSK = "aws:msk/cluster:Cluster"
RDS = "aws:rds/instance:Instance"
TOPIC = "aws:msk/topic:Topic"


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def phase2(program, stack: str) -> Deployment:
    return program(stack)


@pytest.fixture(scope="module")
def phase3(program, stack: str) -> Deployment:
    return program(stack, phase=3)


def _primaries(d: Deployment) -> list[Resource]:
    return [r for r in d.of_type(RDS) if not r.get("replicateSourceDb")]


def test_promotion_keeps_every_phase2_stateful_resource(
    phase2: Deployment, phase3: Deployment
) -> None:
    assert int(phase3.output("phase")) == 3
    assert [s.reason() for s in compare(phase2, phase3) if s.destructive] == []
    kept = graph.stateful(phase2)
    assert {r.type for r in kept} >= {RDS, "aws:elasticache/replicationGroup:ReplicationGroup"}
    for r in kept:
        promoted = phase3.by_urn(r.urn)
        assert promoted.id == r.id and promoted.protect, r.name
        assert forced_replacements(r, promoted) == (), r.name


def test_shard_1_is_the_phase2_database_unchanged(phase2: Deployment, phase3: Deployment) -> None:
    [db] = _primaries(phase2)
    shard1 = phase3.by_urn(db.urn)
    # Not one input of the database changes: phase 3 only adds beside it.
    assert shard1.inputs == db.inputs
    endpoints = phase3.output("shard_endpoints")
    assert endpoints[0] == shard1.out("address") == phase3.output("db_endpoint").split(":")[0]
    assert phase3.output("shard_secret_arns")[0] == phase3.output("db_secret_arn")


def test_shard_2_has_the_same_hardening_behind_the_same_group(phase3: Deployment) -> None:
    shard1, shard2 = (phase3.named(n) for n in ("db-instance", "shard2-instance"))
    assert len(_primaries(phase3)) == 2 and shard2.protect
    differ = {"identifier", "password", "finalSnapshotIdentifier", "tags",
              "dbSubnetGroupName", "parameterGroupName", "instanceClass"}  # fmt: skip
    same = {k: v for k, v in shard1.inputs.items() if k not in differ}
    assert {k: shard2.inputs.get(k) for k in same} == same
    assert shard2.get("vpcSecurityGroupIds") == shard1.get("vpcSecurityGroupIds")
    assert shard2.get("storageEncrypted") and shard2.get("deletionProtection")
    assert shard2.get("publiclyAccessible") is False
    # Its own parameter group, with the same TLS-only parameters.
    params = [phase3.by_id(s.get("parameterGroupName")).get("parameters") for s in (shard1, shard2)]
    assert params[0] == params[1]
    assert {(p["name"], p["value"]) for p in params[1]} >= {("rds.force_ssl", "1")}
    # Its own password and credentials secret, with its own host in it.
    assert shard2.get("password") != shard1.get("password")
    secrets = phase3.output("shard_secret_arns")
    assert len(set(secrets)) == 2
    version = next(
        r for r in phase3.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if r.get("secretId") == secrets[1]
    )  # fmt: skip
    assert json.loads(version.get("secretString"))["host"] == phase3.output("shard_endpoints")[1]
    # No replica of its own: reads go to its primary until one is needed.
    assert [r.name for r in phase3.of_type(RDS) if r.get("replicateSourceDb")] == ["db-replica"]


def test_the_shard_count_comes_from_config(program) -> None:
    three = program("staging", phase=3, shards="3", dbShardInstanceClass="db.t4g.medium")
    names = ["db-instance", "shard2-instance", "shard3-instance"]
    # Registration order varies with load; the outputs keep shard order.
    assert sorted(r.name for r in _primaries(three)) == names
    assert three.named("shard3-instance").get("instanceClass") == "db.t4g.medium"
    assert three.named("db-instance").get("instanceClass") == "db.t3.medium"
    assert three.output("shard_endpoints") == [three.named(n).out("address") for n in names]
    one = program("staging", phase=3, shards="1")
    assert [r.name for r in _primaries(one)] == ["db-instance"]


@pytest.mark.parametrize(
    ("tier", "kind", "port"),
    [("database", RDS, 5432), ("cache", "aws:elasticache/replicationGroup:ReplicationGroup", 6379),
     ("kafka", MSK, 9098)],
)  # fmt: skip
def test_data_tiers_admit_only_declared_services_never_a_cidr(
    phase3: Deployment, tier: str, kind: str, port: int
) -> None:
    """Following ids: tier -> its groups -> every ingress rule -> the source group's node."""
    declared = topology.declare(phases.of(3))
    allowed = set(declared.admits(tier))
    for resource in phase3.of_type(kind):
        groups = graph.security_groups_of(phase3, resource)
        assert len(groups) == 1, resource.name
        assert groups[0].get("tags")["coldreach:node"] == tier
        assert set(groups[0].get("tags")["coldreach:admits"].split()) == allowed
        for rule in graph.ingress(phase3, str(groups[0].id)):
            assert rule.cidr is None, f"{resource.name} admits {rule.cidr}"
            assert (rule.port_from, rule.port_to, rule.protocol) == (port, port, "tcp")
            assert graph.node_of(phase3, rule.source_group) in allowed
    assert graph.undeclared_ingress(phase3) == []


def test_kafka_admits_exactly_the_services_that_name_it() -> None:
    features = phases.of(3)
    assert topology.declare(features).admits("kafka") == ["campaigns", "sender"]


def test_msk_is_kraft_tls_iam_encrypted_logged_private_and_protected(phase3: Deployment) -> None:
    [cluster] = phase3.of_type(MSK)
    assert cluster.protect
    assert str(cluster.get("kafkaVersion")).endswith(".kraft")
    assert cluster.get("clientAuthentication") == {
        "sasl": {"iam": True, "scram": False},
        "unauthenticated": False,
    }
    encryption = cluster.get("encryptionInfo")
    assert encryption["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}
    key = phase3.resolve(encryption["encryptionAtRestKmsKeyArn"])
    assert key.type == "aws:kms/key:Key" and key.get("enableKeyRotation") and key.protect
    logs = cluster.get("loggingInfo")["brokerLogs"]["cloudwatchLogs"]
    assert logs["enabled"] is True
    group = phase3.by_id(logs["logGroup"])
    assert group.get("retentionInDays") == (365 if phase3.stack == "prod" else 30)
    brokers = cluster.get("brokerNodeGroupInfo")
    assert brokers["connectivityInfo"] == {"publicAccess": {"type": "DISABLED"}}
    assert {phase3.by_id(s).get("tags")["tier"] for s in brokers["clientSubnets"]} == {"private"}
    assert phase3.output("kafka_cluster_arn") == cluster.id
    iam = phase3.output("kafka_bootstrap_brokers").split(",")
    assert len(iam) == cluster.get("numberOfBrokerNodes") and all(b.endswith(":9098") for b in iam)


def test_msk_configuration_fits_the_broker_count(phase3: Deployment) -> None:
    [cluster] = phase3.of_type(MSK)
    configuration = phase3.resolve(cluster.get("configurationInfo")["arn"])
    props = dict(line.split("=", 1) for line in configuration.get("serverProperties").splitlines())
    assert props["auto.create.topics.enable"] == "false"
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("2", "1")
    assert configuration.get("kafkaVersions") == [cluster.get("kafkaVersion")]
    topics = {t.get("name"): t for t in phase3.of_type(TOPIC)}
    assert set(topics) == {"email.send.v1", "email.events.v1", "email.send.dlq.v1"}
    for t in topics.values():
        assert t.get("clusterArn") == cluster.id and t.protect
        assert t.get("replicationFactor") == 2
        assert json.loads(t.get("configs"))["min.insync.replicas"] == "1"
    exported = {t["name"]: t for t in phase3.output("kafka_topics")}
    assert exported["email.send.v1"] == {
        "name": "email.send.v1",
        "partitions": 24,
        "replication": 2,
        "min_insync_replicas": 1,
        "retention_ms": 7 * msk.DAY_MS,
    }


def test_four_brokers_replicate_three_ways_and_odd_counts_are_refused(program) -> None:
    four = program("staging", phase=3, kafkaBrokers="4")
    [cluster] = four.of_type(MSK)
    assert cluster.get("numberOfBrokerNodes") == 4
    assert {t.get("replicationFactor") for t in four.of_type(TOPIC)} == {3}
    assert {json.loads(t.get("configs"))["min.insync.replicas"] for t in four.of_type(TOPIC)} == {
        "2"
    }

    def phase3(**values: str):
        # A class whose connections fit phase 3's pools, so only the Kafka keys are judged.
        read = {"phase": "3", "dbInstanceClass": "db.t3.medium", **values}.get
        return parse("staging", read, "us-east-1")

    with pytest.raises(ConfigError, match=r"kafkaBrokers = 3 is not allowed: a multiple of 2"):
        phase3(kafkaBrokers="3")
    with pytest.raises(ConfigError, match="kafkaVersion"):
        phase3(kafkaVersion="3.8.x")
    with pytest.raises(ConfigError, match="kafkaBrokerType"):
        phase3(kafkaBrokerType="kafka.t3.medium")
    assert phase3(kafkaVersion="4.0.x.kraft")
    with pytest.raises(ConfigError, match="kafkaVersion"):
        phase3(kafkaVersion="4.0.x")  # MSK names 4.x with the suffix too


def test_durability_and_partition_budget() -> None:
    assert msk.Durability.for_brokers(2) == msk.Durability(2, 1)
    assert msk.Durability.for_brokers(6) == msk.Durability(3, 2)
    with pytest.raises(ValueError, match="at least 2"):
        msk.Durability.for_brokers(1)
    # 54 partitions x 2 replicas over 2 brokers: 54 each, well inside t3.small's 300.
    assert msk.partition_replicas_per_broker(msk.topics(2), 2) == 54


def test_replacement_guard_sees_msk_inputs_inside_blocks(phase3: Deployment) -> None:
    [cluster] = phase3.of_type(MSK)
    info = cluster.inputs["brokerNodeGroupInfo"]

    def changed(**inputs: object) -> Resource:
        return Resource(**{**cluster.__dict__, "inputs": {**cluster.inputs, **inputs}})

    moved = changed(brokerNodeGroupInfo={**info, "clientSubnets": ["subnet-other"]})
    assert forced_replacements(cluster, moved) == ("brokerNodeGroupInfo.clientSubnets",)
    bigger = changed(brokerNodeGroupInfo={**info, "instanceType": "kafka.m5.xlarge"})
    assert forced_replacements(cluster, bigger) == ()  # an in-place broker type update
    zookeeper = changed(kafkaVersion="3.9.x")
    assert forced_replacements(cluster, zookeeper) == ("kafkaVersion",)
    [step] = [s for s in compare(phase3, _with(phase3, moved)) if s.op == "replace"]
    assert step.blocking


def _with(d: Deployment, resource: Resource) -> Deployment:
    return Deployment(
        d.stack, d.project, [resource if r.urn == resource.urn else r for r in d], d.outputs
    )


def test_replacement_guard_knows_the_eks_cluster_inputs_fixed_at_creation() -> None:
    """From the terraform-provider-aws schema pulumi-aws bridges: these are ForceNew."""
    access = {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    endpoint = {"subnetIds": ["subnet-a", "subnet-b"], "endpointPublicAccess": False}
    base = {
        "name": "cold-reach",
        "roleArn": "arn:aws:iam::123456789012:role/eks",
        "bootstrapSelfManagedAddons": False,
        "accessConfig": access,
        "vpcConfig": endpoint,
        "version": "1.33",
    }  # fmt: skip

    def cluster(**inputs: object) -> Resource:
        return Resource("urn:eks", "aws:eks/cluster:Cluster", "eks", "cold-reach", None,
                        True, True, {**base, **inputs}, {})  # fmt: skip

    before = cluster()
    assert forced_replacements(before, cluster(bootstrapSelfManagedAddons=True)) == (
        "bootstrapSelfManagedAddons",
    )
    admin = {**access, "bootstrapClusterCreatorAdminPermissions": True}
    assert forced_replacements(before, cluster(accessConfig=admin)) == (
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
    )
    # In place: a version upgrade, the endpoint's access, the authentication mode.
    assert forced_replacements(before, cluster(version="1.34")) == ()
    public = {**endpoint, "endpointPublicAccess": True}
    assert forced_replacements(before, cluster(vpcConfig=public)) == ()


def test_phase3_adds_no_mandatory_policy_violation(phase2: Deployment, phase3: Deployment) -> None:
    """None in staging; prod's one is phase 2's own (HTTPS needs `certificateArn`, which the
    stack file says to set before the first deploy)."""
    from coldreach.policy_eval import evaluate

    def mandatory(d: Deployment) -> set[str]:
        return {f"{v.rule} {v.resource}: {v.message}" for v in evaluate(d) if v.mandatory}

    found = evaluate(phase3)
    assert mandatory(phase3) == mandatory(phase2)
    assert mandatory(phase3) <= {
        "A1 edge-http: HTTP listener serves the app instead of redirecting to HTTPS"
    }
    # The MSK rules ran on the cluster and the topics, and found them compliant.
    assert not [v for v in found if v.rule.startswith("M")]


def test_phase3_keys_change_nothing_before_phase_3() -> None:
    from infra.config import SCHEMA

    keys = ["kafkaBrokers", "kafkaBrokerType", "kafkaVersion", "shards", "dbShardInstanceClass"]
    assert SCHEMA.ignored_in(2, keys) == keys
    assert SCHEMA.ignored_in(3, keys) == []


def test_growing_the_brokers_past_two_would_replace_the_topics_and_is_blocked(program) -> None:
    """MSK's topic API cannot change a topic's replication factor (the provider replaces the
    topic, dropping its records): the guard reports it, and `protect` stops `pulumi up`."""
    two, four = program("staging", phase=3), program("staging", phase=3, kafkaBrokers="4")
    blocked = [s for s in compare(two, four) if s.blocking]
    assert {(s.resource.type, s.inputs) for s in blocked} == {(TOPIC, ("replicationFactor",))}
    assert len(blocked) == 3
    # More brokers alone is an in-place MSK operation.
    [cluster] = [s for s in compare(two, four) if s.resource.type == MSK]
    assert cluster.op == "update" and "numberOfBrokerNodes" in cluster.inputs


def test_each_msk_broker_alarms_before_its_disk_fills(phase3: Deployment) -> None:
    [cluster] = phase3.of_type(MSK)
    alarms = [
        a for a in phase3.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.get("namespace") == "AWS/Kafka"
    ]  # fmt: skip
    assert sorted(a.get("dimensions")["Broker ID"] for a in alarms) == ["1", "2"]
    topic = phase3.named("alerts-topic").out("arn")
    for alarm in alarms:
        assert alarm.get("metricName") == "KafkaDataLogsDiskUsed"
        assert alarm.get("dimensions")["Cluster Name"] == cluster.out("clusterName")
        assert (alarm.get("comparisonOperator"), alarm.get("threshold")) == (
            "GreaterThanThreshold",
            80,
        )
        assert alarm.get("alarmActions") == [topic]
