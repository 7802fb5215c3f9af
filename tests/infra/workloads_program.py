"""Phase 3's program with the cluster's workloads, for the workload tests.

The cluster (area EKS) and MSK and the second shard (area DATA3) are built elsewhere; until
their layers call `components.workloads.build`, this program builds the phase's layers and
then the workloads against stand-ins for what those layers hand over: a provider whose
kubeconfig is empty, a node security group, MSK's group and ARN, and shard 2's address.
The stand-ins are plain resources and strings; everything the workloads declare is real.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from coldreach import stacks
from coldreach.runtime import Deployment, EchoBackend, evaluate
from components import workloads
from components.firewall import SecurityGroup
from infra import config, topology
from infra.layers import compute, data, edge, network

KUBERNETES_VERSION = "1.35"
"""The cluster's version the stand-in declares (standard support until 2027-03)."""
KAFKA_ARN = (
    "arn:aws:kafka:us-east-1:123456789012:cluster/cold-reach-msk/"
    "6c6f8a0e-1b2c-4d5e-9f00-0a1b2c3d4e5f-3"
)
KAFKA_BROKERS = "b-1.msk.example:9098,b-2.msk.example:9098"
TOPICS = (
    workloads.Topic("email.send.v1", partitions=24, replication=2, min_insync=1),
    workloads.Topic("email.send.dlq.v1", partitions=4, replication=2, min_insync=1),
)
SHARD_2_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shard-2-AbCdEf"


def _program() -> None:
    s = config.load()
    declared = topology.declare(s.features)
    net = network.build(s)
    tiers = data.build(s, declared, net)
    front = edge.build(s, declared, net)
    apps = compute.build(s, declared, net, tiers, front)

    provider = k8s.Provider("k8s", kubeconfig="{}")
    nodes = aws.ec2.SecurityGroup(
        "stand-in-nodes", description="The node group's security group", vpc_id=net.vpc.id
    )
    groups = {topology.EDGE: front.load_balancer.security_group}
    groups["database"] = tiers.database.security_group
    if s.features.kafka:
        groups["kafka"] = SecurityGroup(
            "kafka-sg", "MSK", net.vpc.id, parent=nodes, tags=declared.tags("kafka")
        )
    if tiers.cache is not None:
        groups["cache"] = tiers.cache.security_group
    db = tiers.database
    shards = [
        workloads.Shard(db.address, 5432, db.name, db.secret_arn),
        workloads.Shard("shard-2.example.internal", 5432, "coldreach", SHARD_2_SECRET),
    ]
    built = workloads.build(
        s,
        declared,
        provider,
        workloads.WorkloadsArgs(
            cluster_name="cold-reach",
            node_security_group_id=nodes.id,
            vpc_id=net.vpc.id,
            vpc_cidr=s.network.vpc_cidr,
            image=apps.image.ref,
            kubernetes_version=KUBERNETES_VERSION,
            access=workloads.Access(
                shards=shards,
                groups=groups,
                unsubscribe_secret_arn=apps.unsubscribe_key.arn,
                public_url=front.public_url,
                kafka=workloads.Kafka(KAFKA_ARN, KAFKA_BROKERS, TOPICS)
                if s.features.kafka
                else None,
                mail=front.mail,
            ),
        ),
    )
    pulumi.export("namespace", built.namespace.metadata.name)
    pulumi.export("topology", declared.to_json())


def evaluate_workloads(stack: str, **overrides: str) -> Deployment:
    cfg = stacks.load(stacks.find_root(), stack).with_phase(3)
    full = {**cfg.config, **{f"cold-reach:{k}": v for k, v in overrides.items()}}
    return evaluate(
        _program,
        project=cfg.project,
        stack=stack,
        config=full,
        secret_keys=cfg.secret_keys,
        backend=EchoBackend(region=full.get("aws:region") or "us-east-1"),
    )
