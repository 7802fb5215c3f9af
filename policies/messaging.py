"""Rules for MSK: TLS everywhere, IAM authentication only, encryption at rest with our own
key, private brokers with logs, a KRaft version, and topics that survive a broker loss."""

from __future__ import annotations

import json
from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from policies import tokens as t
from policies.model import is_true, known_text, mapping, present, resource_rule


def _at(props: object, *path: str) -> object:
    value = props
    for key in path:
        value = mapping(value).get(key)
    return value


@resource_rule(
    "M1",
    "msk-encryption",
    types=t.MSK_CLUSTER,
    sources=("SH MSK.1", "CKV_AWS_81", "AVD-AWS-0073", "AVD-AWS-0179"),
    severity=Severity.HIGH,
    description=(
        "TLS between clients and brokers and between brokers; encryption at rest with a "
        "customer-managed KMS key (both fixed at creation)"
    ),
)
def msk_encryption(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    transit = _at(p, "encryptionInfo", "encryptionInTransit")
    # Set explicitly: the provider's default (TLS) is not something a reviewer can see.
    broker = known_text(mapping(transit), "clientBroker")
    if broker != "TLS":
        yield f"encryptionInTransit.clientBroker is {broker or 'not set'}; want TLS only"
    if _at(p, "encryptionInfo", "encryptionInTransit", "inCluster") is False:
        yield "encryptionInTransit.inCluster is false: brokers replicate in plaintext"
    if not present(mapping(_at(p, "encryptionInfo")), "encryptionAtRestKmsKeyArn"):
        yield "no encryptionAtRestKmsKeyArn: data at rest uses the AWS-managed key"


@resource_rule(
    "M2",
    "msk-iam-authentication",
    types=t.MSK_CLUSTER,
    sources=("SH MSK.6", "Cold Reach: IAM auth on 9098 only"),
    severity=Severity.HIGH,
    description="Clients authenticate with IAM; no unauthenticated, SCRAM or mTLS access",
)
def msk_iam_authentication(args: ResourceValidationArgs) -> Iterator[str]:
    auth = mapping(args.props.get("clientAuthentication"))
    if not is_true(_at(auth, "sasl", "iam")):
        yield "clientAuthentication.sasl.iam is not true"
    if is_true(auth.get("unauthenticated")):
        yield "clientAuthentication.unauthenticated is true: anyone in the VPC can connect"
    if is_true(_at(auth, "sasl", "scram")) or present(auth, "tls"):
        yield "SCRAM or TLS client authentication opens listeners IAM does not govern"


@resource_rule(
    "M3",
    "msk-private-logged",
    types=t.MSK_CLUSTER,
    sources=("SH MSK.4", "CKV_AWS_291", "CKV_AWS_80", "AVD-AWS-0074"),
    severity=Severity.HIGH,
    description="Brokers have no public access and send their logs to CloudWatch",
)
def msk_private_logged(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    public = _at(p, "brokerNodeGroupInfo", "connectivityInfo", "publicAccess", "type")
    if public not in (None, "DISABLED"):
        yield f"publicAccess.type is {public}: brokers are reachable from the internet"
    logs = _at(p, "loggingInfo", "brokerLogs", "cloudwatchLogs")
    if not is_true(_at(logs, "enabled")) or not present(mapping(logs), "logGroup"):
        yield "broker logs are not sent to a CloudWatch log group"


@resource_rule(
    "M4",
    "msk-kraft",
    types=t.MSK_CLUSTER,
    sources=("MSK kraft-intro: the metadata mode is fixed at creation",),
    severity=Severity.MEDIUM,
    description="The cluster runs in KRaft mode (ZooKeeper clusters cannot switch later)",
)
def msk_kraft(args: ResourceValidationArgs) -> Iterator[str]:
    version = known_text(args.props, "kafkaVersion")
    major = version.split(".")[0]
    if version and not version.endswith(".kraft"):
        if major.isdigit() and int(major) >= 4:
            yield f"kafkaVersion {version} is not an MSK version; 4.x is named {version}.kraft"
        else:
            yield f"kafkaVersion {version} runs ZooKeeper; use 3.7.x.kraft or later"


@resource_rule(
    "M5",
    "msk-topic-durability",
    types=t.MSK_TOPIC,
    sources=("MSK best practices: replication factor and min.insync.replicas",),
    severity=Severity.MEDIUM,
    description=(
        "Topics keep a second copy (replication >= 2) and accept writes with one broker "
        "down (min.insync.replicas < replication)"
    ),
)
def msk_topic_durability(args: ResourceValidationArgs) -> Iterator[str]:
    replication = args.props.get("replicationFactor")
    if replication is None or int(replication) < 2:
        yield f"replicationFactor is {replication}; a lost broker loses the topic's data"
        return
    try:
        configs = json.loads(known_text(args.props, "configs") or "{}")
    except json.JSONDecodeError:
        configs = {}
    insync = configs.get("min.insync.replicas")
    if insync is None:
        yield "configs do not set min.insync.replicas: the cluster default decides"
    elif int(insync) >= int(replication):
        yield (
            f"min.insync.replicas {insync} >= replicationFactor {replication}: one broker "
            "down stops every acks=all producer"
        )
