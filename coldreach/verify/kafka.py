"""Phase 3's data tiers as deployed: MSK (TLS, IAM only, encrypted with our key, KRaft,
private, logged, reachable only from the services the topology names) and the shards
(each found, each behind the database tier's groups)."""

from __future__ import annotations

from typing import Any

from coldreach.verify.aws import Aws
from coldreach.verify.discovery import State
from coldreach.verify.findings import FAIL, Finding, verdict
from coldreach.verify.network import check_tier_ingress, private

KAFKA_IAM_PORT = 9098


def check_kafka(state: State, aws: Aws) -> list[Finding]:
    arn = state.outputs.get("kafka_cluster_arn")
    if not arn:
        return []
    try:
        info = aws("kafka").describe_cluster(ClusterArn=str(arn))["ClusterInfo"]
    except Exception as err:
        return [Finding("kafka.exists", str(arn), FAIL, f"cluster not found: {err}")]
    name = str(info.get("ClusterName") or arn)
    brokers = info.get("BrokerNodeGroupInfo") or {}
    encryption = info.get("EncryptionInfo") or {}
    transit = encryption.get("EncryptionInTransit") or {}
    auth = info.get("ClientAuthentication") or {}
    sasl = auth.get("Sasl") or {}
    version = str((info.get("CurrentBrokerSoftwareInfo") or {}).get("KafkaVersion") or "")
    logs = ((info.get("LoggingInfo") or {}).get("BrokerLogs") or {}).get("CloudWatchLogs") or {}
    public = ((brokers.get("ConnectivityInfo") or {}).get("PublicAccess") or {}).get("Type")
    iam = _enabled(sasl.get("Iam"))
    open_ = _enabled(auth.get("Unauthenticated")) or _enabled(sasl.get("Scram"))
    tls = transit.get("ClientBroker") == "TLS" and transit.get("InCluster") is not False
    out = [
        verdict("kafka.tls", name, tls, "TLS only, client-broker and in-cluster",
                f"client-broker {transit.get('ClientBroker')}, in-cluster "
                f"{transit.get('InCluster')}"),
        verdict("kafka.auth", name, iam and not open_, "IAM authentication only",
                f"IAM {'on' if iam else 'OFF'}, unauthenticated or SCRAM "
                f"{'ON' if open_ else 'off'}"),
        verdict("kafka.encrypted", name,
                bool((encryption.get("EncryptionAtRest") or {}).get("DataVolumeKMSKeyId")),
                "encrypted at rest with a customer-managed key",
                "no customer-managed key for encryption at rest"),
        verdict("kafka.kraft", name, _kraft(version), f"{version} (KRaft)",
                f"{version or 'unknown version'} runs ZooKeeper"),
        verdict("kafka.logs", name, logs.get("Enabled") is True and bool(logs.get("LogGroup")),
                f"broker logs to {logs.get('LogGroup')}", "broker logs are off"),
        private("kafka.private", name, public not in (None, "DISABLED"),
                set(brokers.get("ClientSubnets") or []), state.public_subnets),
    ]  # fmt: skip
    groups = set(brokers.get("SecurityGroups") or [])
    return out + check_tier_ingress(state, "sg.kafka_ingress", "Kafka", groups, KAFKA_IAM_PORT)


def check_shards(state: State) -> list[Finding]:
    endpoints = [str(e) for e in state.outputs.get("shard_endpoints") or []]
    if not endpoints:
        return []
    by_address = {
        (db.get("Endpoint") or {}).get("Address"): ident for ident, db in state.db_instances.items()
    }
    primary = state.db_instances.get(str(state.outputs.get("db_identifier"))) or {}
    tier_groups = _groups(primary)
    out: list[Finding] = []
    for number, address in enumerate(endpoints, start=1):
        ident = by_address.get(address)
        label = f"shard {number} ({address})"
        if ident is None:
            out.append(Finding("rds.shards", label, FAIL, "no instance at this address"))
            continue
        groups = _groups(state.db_instances[ident])
        out.append(
            verdict("rds.shards", label, bool(groups) and groups <= tier_groups,
                    f"{ident}, behind the database tier's groups",
                    f"{ident} sits in {sorted(groups)}, not the database tier's "
                    f"{sorted(tier_groups)}")
        )  # fmt: skip
    if endpoints and by_address.get(endpoints[0]) != state.outputs.get("db_identifier"):
        out.append(Finding("rds.shards", "shard 1", FAIL, "shard 1 is not the phase-2 primary"))
    return out


def _groups(db: dict[str, Any]) -> set[str]:
    return {g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or []}


def _enabled(block: Any) -> bool:
    return isinstance(block, dict) and block.get("Enabled") is True


def _kraft(version: str) -> bool:
    major = version.split(".")[0]
    return version.endswith(".kraft") or (major.isdigit() and int(major) >= 4)
