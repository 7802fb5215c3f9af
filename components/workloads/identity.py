"""One AWS role per workload that calls AWS, assumed through EKS Pod Identity, granting
exactly what its reaches need: the secrets it reads, the Kafka topics it writes or reads,
SES sending. A workload that calls no AWS API (the tracing backend) gets no role."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import iam
from components.workloads.access import Access, Kafka
from infra.topology import SES, Kind, Service, Topology

POD_IDENTITY = "pods.eks.amazonaws.com"


def reads_unsubscribe_key(service: Service, topology: Topology) -> bool:
    """The link's signer (who sends mail) and its verifier (who serves the link)."""
    return service.load_balanced or service.may_reach(topology.features, SES)


def secret_arns(service: Service, topology: Topology, access: Access) -> list[pulumi.Input[str]]:
    """The secrets a workload reads: the credentials of the shards it reaches (shard 1 for
    the directory or the primary, every shard for the shards) unless it signs in with IAM,
    and the unsubscribe key where links are made or checked."""
    endpoints = service.database_endpoints(topology.features)
    found: list[pulumi.Input[str]] = []
    if access.iam_db_user is None:
        found += [shard.secret_arn for shard in access.reached_shards(endpoints)]
    if reads_unsubscribe_key(service, topology):
        found.append(access.unsubscribe_secret_arn)
    return found


def consumes(service: Service) -> bool:
    """A worker that reaches Kafka consumes the send topic; any other reacher produces to it."""
    return service.kind is Kind.WORKER


def _group_arn(cluster_arn: pulumi.Input[str], group: str) -> pulumi.Output[str]:
    """MSK's consumer-group ARNs sit beside the cluster's (no resource declares a group):
    arn:aws:kafka:<region>:<account>:group/<cluster name>/<cluster uuid>/<group>."""
    return pulumi.Output.from_input(cluster_arn).apply(
        lambda arn: arn.replace(":cluster/", ":group/", 1) + f"/{group}"
    )


def _topic_arn(kafka: Kafka, topic: str) -> pulumi.Input[str]:
    try:
        return kafka.topic_arns[topic]
    except KeyError:
        raise ValueError(
            f"topic {topic!r} is not among the topics MSK creates ({', '.join(kafka.topic_arns)})"
        ) from None


def kafka_statements(service: Service, kafka: Kafka) -> list[iam.Statement]:
    send = _topic_arn(kafka, kafka.send_topic)
    # Idempotent producers (the outbox relay, the sender's dead-letter writes) need the
    # cluster-level WriteDataIdempotently beside WriteData on the topic.
    cluster = iam.allow(
        ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"], [kafka.cluster_arn]
    )
    if not consumes(service):
        writes = iam.allow(["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"], [send])
        return [cluster, writes]
    dead_letters = _topic_arn(kafka, kafka.dead_letter_topic)
    group = _group_arn(kafka.cluster_arn, kafka.consumer_group)
    return [
        cluster,
        # The sender fleet also runs the outbox relay (`coldreach-app consume`), so it
        # publishes to the send topic as well as reading it.
        iam.allow(
            ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData"],
            [send],
        ),
        iam.allow(["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"], [dead_letters]),
        iam.allow(["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"], [group]),
    ]


def statements(service: Service, topology: Topology, access: Access) -> list[iam.Statement]:
    found: list[iam.Statement] = []
    shards = access.reached_shards(service.database_endpoints(topology.features))
    if shards and access.iam_db_user is not None:
        connect = [shard.connect_arn for shard in shards]
        if any(arn is None for arn in connect):
            raise ValueError("pods sign in with IAM: every shard needs its rds-db:connect ARN")
        found.append(iam.allow(["rds-db:connect"], [arn for arn in connect if arn is not None]))
    secrets = secret_arns(service, topology, access)
    if secrets:
        found.append(iam.allow(["secretsmanager:GetSecretValue"], secrets))
    if service.may_reach(topology.features, "kafka") and access.kafka is not None:
        found += kafka_statements(service, access.kafka)
    if service.may_reach(topology.features, SES) and access.mail is not None:
        found.append(access.mail.send_permission())
    return found


def trust_policy(
    cluster_name: pulumi.Input[str], namespace: str, service_account: str
) -> pulumi.Output[str]:
    """Pod Identity assumes the role with session tags; the conditions keep it to this
    cluster, namespace and service account, whatever association names the role."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {
                        "StringEquals": {
                            "aws:RequestTag/eks-cluster-name": cluster_name,
                            "aws:RequestTag/kubernetes-namespace": namespace,
                            "aws:RequestTag/kubernetes-service-account": service_account,
                        }
                    },
                }
            ],
        }
    )


def pod_role(
    name: str,
    statements_: list[iam.Statement],
    cluster_name: pulumi.Input[str],
    namespace: str,
    service_account: str,
    parent: pulumi.Resource,
) -> aws.eks.PodIdentityAssociation:
    """The role, its one inline policy and the association naming the service account."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-pod-role",
        description=f"Cold Reach {name} pods (EKS Pod Identity)",
        assume_role_policy=trust_policy(cluster_name, namespace, service_account),
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-pod-access", role=role.id, policy=iam.policy(*statements_), opts=opts
    )
    return aws.eks.PodIdentityAssociation(
        f"{name}-pod-identity",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=opts,
    )
