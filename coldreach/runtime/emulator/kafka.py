"""MSK: provisioned clusters (moto 5 holds them; it has no configurations, topics or
bootstrap brokers, which stay rendered, not deployed)."""

from __future__ import annotations

from typing import Any

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, drop_none
from policies import tokens as t


def _enabled(value: Any) -> dict[str, bool]:
    return {"Enabled": bool(value)}


def _broker_group(info: dict[str, Any]) -> dict[str, Any]:
    ebs = ((info.get("storageInfo") or {}).get("ebsStorageInfo") or {}).get("volumeSize")
    public = ((info.get("connectivityInfo") or {}).get("publicAccess") or {}).get("type")
    return drop_none(
        {
            "InstanceType": info.get("instanceType"),
            "ClientSubnets": info.get("clientSubnets"),
            "SecurityGroups": info.get("securityGroups"),
            "StorageInfo": {"EbsStorageInfo": {"VolumeSize": ebs}} if ebs else None,
            "ConnectivityInfo": {"PublicAccess": {"Type": public}} if public else None,
        }
    )


def _authentication(auth: dict[str, Any]) -> dict[str, Any]:
    sasl = auth.get("sasl") or {}
    return {
        "Sasl": {"Iam": _enabled(sasl.get("iam")), "Scram": _enabled(sasl.get("scram"))},
        "Unauthenticated": _enabled(auth.get("unauthenticated")),
    }


def _encryption(info: dict[str, Any]) -> dict[str, Any]:
    transit = info.get("encryptionInTransit") or {}
    return drop_none(
        {
            "EncryptionAtRest": {"DataVolumeKMSKeyId": info["encryptionAtRestKmsKeyArn"]}
            if info.get("encryptionAtRestKmsKeyArn")
            else None,
            "EncryptionInTransit": drop_none(
                {"ClientBroker": transit.get("clientBroker"), "InCluster": transit.get("inCluster")}
            ),
        }
    )


def _logging(info: dict[str, Any]) -> dict[str, Any]:
    cloudwatch = (info.get("brokerLogs") or {}).get("cloudwatchLogs") or {}
    return {
        "BrokerLogs": {
            "CloudWatchLogs": drop_none(
                {"Enabled": bool(cloudwatch.get("enabled")), "LogGroup": cloudwatch.get("logGroup")}
            )
        }
    }


@handles(t.MSK_CLUSTER)
def msk_cluster(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    configuration = c.get("configurationInfo") or {}
    created = b.client("kafka").create_cluster(
        **drop_none(
            {
                "ClusterName": name,
                "KafkaVersion": c.get("kafkaVersion"),
                "NumberOfBrokerNodes": c.get("numberOfBrokerNodes"),
                "BrokerNodeGroupInfo": _broker_group(c.get("brokerNodeGroupInfo") or {}),
                "ClientAuthentication": _authentication(c.get("clientAuthentication") or {}),
                "EncryptionInfo": _encryption(c.get("encryptionInfo") or {}),
                "LoggingInfo": _logging(c.get("loggingInfo") or {}),
                "EnhancedMonitoring": c.get("enhancedMonitoring"),
                "ConfigurationInfo": {
                    "Arn": configuration["arn"],
                    "Revision": configuration.get("revision") or 1,
                }
                if configuration.get("arn")
                else None,
                "Tags": c.get("tags") or None,
            }
        )
    )
    arn = created["ClusterArn"]
    info = b.client("kafka").describe_cluster(ClusterArn=arn)["ClusterInfo"]
    # moto has no GetBootstrapBrokers: the broker addresses exist only on a real cluster.
    return arn, {
        "arn": arn,
        "currentVersion": info.get("CurrentVersion") or "",
        "bootstrapBrokersSaslIam": "",
    }
