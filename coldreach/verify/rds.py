"""PostgreSQL on RDS: private, encrypted, backed up, protected; the replica's source."""

from __future__ import annotations

from typing import Any

from coldreach.verify.aws import Aws
from coldreach.verify.discovery import State
from coldreach.verify.findings import FAIL, PASS, Finding, verdict
from coldreach.verify.network import private

MIN_BACKUP_DAYS = 7


def check_rds(state: State) -> list[Finding]:
    out: list[Finding] = []
    primary_id = state.outputs.get("db_identifier")
    if primary_id not in state.db_instances:
        out.append(Finding("rds.exists", str(primary_id), FAIL, "primary instance not found"))
    for ident, db in sorted(state.db_instances.items()):
        role = "replica" if db.get("ReadReplicaSourceDBInstanceIdentifier") else "primary"
        name = f"{ident} ({role})"
        out.append(private("rds.private", name, bool(db.get("PubliclyAccessible")),
                            _db_subnets(db), state.public_subnets))  # fmt: skip
        out.append(
            verdict(
                "rds.encrypted",
                name,
                bool(db.get("StorageEncrypted")),
                "storage encrypted",
                "storage NOT encrypted",
            )
        )
        days = int(db.get("BackupRetentionPeriod") or 0)
        out.append(
            verdict(
                "rds.backups",
                name,
                days >= MIN_BACKUP_DAYS,
                f"backups kept {days} days (>= {MIN_BACKUP_DAYS} required)",
            )
        )
        out.append(
            verdict(
                "rds.deletion_protection",
                name,
                bool(db.get("DeletionProtection")),
                "deletion protection on",
                "deletion protection off",
            )
        )
    if state.phase >= 2:
        out.append(_check_replica(state, str(primary_id)))
    return out


def _db_subnets(db: dict[str, Any]) -> set[str]:
    return {s["SubnetIdentifier"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets") or []}


def _check_replica(state: State, primary_id: str) -> Finding:
    replica_id = state.outputs.get("db_replica_identifier")
    if not replica_id:
        return Finding("rds.replica", "(none)", FAIL, "phase 2 needs a read replica; no output")
    db = state.db_instances.get(str(replica_id))
    if db is None:
        return Finding("rds.replica", str(replica_id), FAIL, "read replica not found")
    source = str(db.get("ReadReplicaSourceDBInstanceIdentifier") or "")
    if source.rsplit(":", 1)[-1] != primary_id:
        detail = f"replicates {source or 'nothing'}, not the primary {primary_id}"
        return Finding("rds.replica", str(replica_id), FAIL, detail)
    return Finding("rds.replica", str(replica_id), PASS, f"read replica of {primary_id}")


def check_rotation(state: State, aws: Aws) -> list[Finding]:
    """Where the topology declares the rotation function (cold-reach:dbIamAuth on), the
    master secret rotates, through that function."""
    topology = state.outputs.get("topology") or {}
    if "db-rotation" not in (topology.get("functions") or {}):
        return []
    arn = str(state.outputs.get("db_secret_arn"))
    function = str(state.outputs.get("db_rotation_function"))
    secret = aws("secretsmanager").describe_secret(SecretId=arn)
    lambda_arn = str(secret.get("RotationLambdaARN") or "")
    days = (secret.get("RotationRules") or {}).get("AutomaticallyAfterDays")
    return [
        verdict(
            "rds.rotation",
            str(secret.get("Name") or arn),
            bool(secret.get("RotationEnabled")) and lambda_arn.endswith(f":function:{function}"),
            f"master secret rotates every {days} days through {function}",
            f"master secret does not rotate through {function} (rotation enabled: "
            f"{bool(secret.get('RotationEnabled'))}, function: {lambda_arn or 'none'})",
        )
    ]
