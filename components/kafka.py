"""Kafka on MSK (provisioned, KRaft): private, TLS-only, IAM-authenticated, encrypted, logged.

Clients connect on the IAM listener (9098) only: no plaintext, no TLS-only
or SCRAM listener is opened, and no broker is public. Topics are declared
here (`TOPICS`) and created through MSK's topic API (`aws.msk.Topic`), so
nothing needs a Kafka admin client or network access to the brokers, and
`auto.create.topics.enable=false` keeps a typo from inventing a topic.

Replication follows the broker count: brokers sit one per private subnet
(2 AZs), so 2 brokers give replication 2 with `min.insync.replicas` 1 (an
`acks=all` producer keeps writing while one broker is patched; the outbox
can re-publish what a lost broker held), 3 or more give 3 and 2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.firewall import SecurityGroup

IAM_PORT = 9098
"""The in-VPC listener for SASL/IAM over TLS (9092 plaintext, 9094 TLS and 9096 SCRAM stay
closed because only IAM authentication is enabled)."""

PARTITIONS_PER_BROKER = {"kafka.t3.small": 300}
"""MSK's recommended partition replicas per Standard broker (leader and follower); 1000 for
the m5/m7g sizes this program allows (MSK best practices)."""
DEFAULT_PARTITIONS_PER_BROKER = 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the program creates it: name, partitions, replication and the
    configs it overrides."""

    name: str
    partitions: int
    replication: int
    min_insync: int
    retention_ms: int
    purpose: str

    def configs(self) -> dict[str, str]:
        return {
            "min.insync.replicas": str(self.min_insync),
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "delete",
        }

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "partitions": self.partitions,
            "replication": self.replication,
            "min_insync_replicas": self.min_insync,
            "retention_ms": self.retention_ms,
        }


@dataclass(frozen=True)
class Durability:
    """Replication and `min.insync.replicas` that the broker count can honour."""

    replication: int
    min_insync: int

    @classmethod
    def for_brokers(cls, brokers: int) -> Durability:
        if brokers < 2:
            raise ValueError("MSK needs at least 2 brokers (one per AZ)")
        replication = min(3, brokers)
        return cls(replication, max(1, replication - 1))


DAY_MS = 24 * 3600 * 1000
# (name, partitions, retention days, purpose). Keyed by client id, so one client's sends
# stay in order on one partition; consumers beyond the partition count would sit idle.
_TOPICS: tuple[tuple[str, int, int, str], ...] = (
    ("email.send.v1", 24, 7, "send requests from the campaign service's outbox"),
    ("email.events.v1", 24, 7, "sent, failed and bounced outcomes"),
    ("email.send.dlq.v1", 6, 14, "records the sender could not read"),
)


def topics(brokers: int) -> tuple[TopicSpec, ...]:
    """The topics the app uses, replicated as `brokers` allows."""
    d = Durability.for_brokers(brokers)
    return tuple(
        TopicSpec(name, partitions, d.replication, d.min_insync, days * DAY_MS, purpose)
        for name, partitions, days, purpose in _TOPICS
    )


def partition_replicas_per_broker(specs: Sequence[TopicSpec], brokers: int) -> float:
    return sum(t.partitions * t.replication for t in specs) / brokers


def server_properties(brokers: int) -> str:
    """The cluster's `server.properties`: no auto-created topics, and defaults that fit the
    broker count (a topic created without settings gets these)."""
    d = Durability.for_brokers(brokers)
    lines = {
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(d.replication),
        "min.insync.replicas": str(d.min_insync),
        # A replica that fell behind never becomes leader: no silent loss of acked records.
        "unclean.leader.election.enable": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


@dataclass
class KafkaArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets, one per AZ: brokers are spread evenly over them."""
    version: str
    """A KRaft version (`3.9.x.kraft`, `4.x`): the metadata mode is fixed at creation."""
    broker_type: str
    brokers: int
    storage_gb: int
    log_retention_days: int
    protect: bool
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the security group (the topology node it is, whom it admits)."""


class Kafka(pulumi.ComponentResource):
    """An MSK provisioned cluster, its configuration, broker logs and topics.

    Nothing gets in until a caller opens the security group to another group
    (`firewall.connect`) on `IAM_PORT`; what a client may do once connected is
    decided by IAM (`kafka-cluster:*` on the cluster and topic ARNs).
    """

    cluster: aws.msk.Cluster
    security_group: SecurityGroup
    topics: dict[str, aws.msk.Topic]
    specs: tuple[TopicSpec, ...]

    def __init__(
        self, name: str, args: KafkaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:kafka:Kafka", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.brokers % len(args.subnet_ids):
            raise ValueError(
                f"{name}: {args.brokers} brokers cannot spread evenly over "
                f"{len(args.subnet_ids)} subnets"
            )
        self.specs = topics(args.brokers)
        budget = PARTITIONS_PER_BROKER.get(args.broker_type, DEFAULT_PARTITIONS_PER_BROKER)
        load = partition_replicas_per_broker(self.specs, args.brokers)
        if load > budget:
            raise ValueError(
                f"{name}: {load:g} partition replicas per broker exceed the {budget} "
                f"{args.broker_type} supports"
            )

        self.security_group = SecurityGroup(
            f"{name}-sg",
            f"{name}: Kafka brokers (TLS, IAM), reachable only from the services that use it",
            args.vpc_id,
            self,
            args.security_group_tags,
        )
        # A key of our own: the data stays readable only while this key exists, and
        # the encryption key is chosen at creation (changing it replaces the cluster).
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: MSK encryption at rest",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.broker_logs = aws.cloudwatch.LogGroup(
            f"{name}-broker-logs", retention_in_days=args.log_retention_days, opts=child
        )
        self.configuration = aws.msk.Configuration(
            f"{name}-config",
            description=f"{name}: no auto-created topics, replication for {args.brokers} brokers",
            kafka_versions=[args.version],
            server_properties=server_properties(args.brokers),
            opts=child,
        )
        self.cluster = aws.msk.Cluster(
            f"{name}-cluster",
            kafka_version=args.version,
            number_of_broker_nodes=args.brokers,
            broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
                instance_type=args.broker_type,
                client_subnets=list(args.subnet_ids),
                security_groups=[self.security_group.id],
                storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                    ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                        volume_size=args.storage_gb
                    )
                ),
                connectivity_info=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoArgs(
                    public_access=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoPublicAccessArgs(
                        type="DISABLED"
                    )
                ),
            ),
            client_authentication=aws.msk.ClusterClientAuthenticationArgs(
                sasl=aws.msk.ClusterClientAuthenticationSaslArgs(iam=True, scram=False),
                unauthenticated=False,
            ),
            encryption_info=aws.msk.ClusterEncryptionInfoArgs(
                encryption_at_rest_kms_key_arn=self.key.arn,
                encryption_in_transit=aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs(
                    client_broker="TLS", in_cluster=True
                ),
            ),
            configuration_info=aws.msk.ClusterConfigurationInfoArgs(
                arn=self.configuration.arn, revision=self.configuration.latest_revision
            ),
            logging_info=aws.msk.ClusterLoggingInfoArgs(
                broker_logs=aws.msk.ClusterLoggingInfoBrokerLogsArgs(
                    cloudwatch_logs=aws.msk.ClusterLoggingInfoBrokerLogsCloudwatchLogsArgs(
                        enabled=True, log_group=self.broker_logs.name
                    )
                )
            ),
            # DEFAULT-level metrics are free (CPU, connections, disk use per broker); the
            # finer levels are billed as CloudWatch custom metrics.
            enhanced_monitoring="DEFAULT",
            tags={"Name": f"{name}-cluster"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # Topics hold the queued sends: deleting one drops them, so they are protected too.
        self.topics = {
            spec.name: aws.msk.Topic(
                f"{name}-topic-{spec.name.replace('.', '-')}",
                cluster_arn=self.cluster.arn,
                name=spec.name,
                partition_count=spec.partitions,
                replication_factor=spec.replication,
                configs=json.dumps(spec.configs(), sort_keys=True),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            for spec in self.specs
        }
        self.register_outputs(
            {
                "cluster_arn": self.cluster.arn,
                "bootstrap_brokers": self.bootstrap_brokers,
                "security_group_id": self.security_group.id,
                "topics": [s.to_json() for s in self.specs],
            }
        )

    @property
    def bootstrap_brokers(self) -> pulumi.Output[str]:
        """`host:9098,...` of the IAM listener, what a client's `bootstrap.servers` takes."""
        return self.cluster.bootstrap_brokers_sasl_iam
