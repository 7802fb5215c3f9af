"""RDS: subnet and parameter groups, instances and read replicas."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles, updates
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from coldreach.runtime.model import Resource
from policies import tokens as t


@handles(t.RDS_SUBNET_GROUP)
def db_subnet_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    group = b.client("rds").create_db_subnet_group(
        DBSubnetGroupName=name,
        DBSubnetGroupDescription=c.get("description", "Managed by Pulumi"),
        SubnetIds=c.get("subnetIds"),
        Tags=aws_tags(c.get("tags")),
    )["DBSubnetGroup"]
    return name, {
        "arn": group.get("DBSubnetGroupArn") or b.arn("rds", f"subgrp:{name}"),
        "vpcId": group.get("VpcId"),
    }


@handles(t.RDS_PARAMETER_GROUP)
def db_parameter_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    rds = b.client("rds")
    name = b.name(c)
    group = rds.create_db_parameter_group(
        DBParameterGroupName=name,
        DBParameterGroupFamily=c.get("family"),
        Description=c.get("description", "Managed by Pulumi"),
        Tags=aws_tags(c.get("tags")),
    )["DBParameterGroup"]
    parameters = [
        {
            "ParameterName": p["name"],
            "ParameterValue": str(p["value"]),
            "ApplyMethod": p.get("applyMethod") or "immediate",
        }
        for p in c.get("parameters", [])
    ]
    if parameters:
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=parameters)
    return name, {"arn": group.get("DBParameterGroupArn") or b.arn("rds", f"pg:{name}")}


@handles(t.RDS_INSTANCE)
def db_instance(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    rds = b.client("rds")
    identifier = b.name(c)
    common = {
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": c.get("instanceClass"),
        "StorageType": c.get("storageType"),
        "MaxAllocatedStorage": c.get("maxAllocatedStorage"),
        "VpcSecurityGroupIds": c.get("vpcSecurityGroupIds"),
        "DBParameterGroupName": c.get("parameterGroupName"),
        "PubliclyAccessible": bool(c.get("publiclyAccessible", False)),
        "MultiAZ": c.get("multiAz"),
        "CopyTagsToSnapshot": c.get("copyTagsToSnapshot"),
        "DeletionProtection": bool(c.get("deletionProtection", False)),
        "EnablePerformanceInsights": c.get("performanceInsightsEnabled"),
        "PerformanceInsightsRetentionPeriod": c.get("performanceInsightsRetentionPeriod"),
        "EnableCloudwatchLogsExports": c.get("enabledCloudwatchLogsExports"),
        "EnableIAMDatabaseAuthentication": c.get("iamDatabaseAuthenticationEnabled"),
        "AutoMinorVersionUpgrade": c.get("autoMinorVersionUpgrade"),
        "Tags": aws_tags(c.get("tags")) or None,
    }
    source = c.get("replicateSourceDb")
    if source:
        # A replica inherits engine, credentials and encryption from its source;
        # the provider then sets what the replica API does not take.
        db = rds.create_db_instance_read_replica(
            **drop_none({**common, "SourceDBInstanceIdentifier": source})
        )["DBInstance"]
        modify = drop_none(
            {
                "BackupRetentionPeriod": c.get("backupRetentionPeriod"),
                "DeletionProtection": common["DeletionProtection"],
                "CACertificateIdentifier": c.get("caCertIdentifier"),
            }
        )
        db = rds.modify_db_instance(
            DBInstanceIdentifier=identifier, ApplyImmediately=True, **modify
        )["DBInstance"]
    else:
        db = rds.create_db_instance(
            **drop_none(
                {
                    **common,
                    "Engine": c.get("engine"),
                    "EngineVersion": c.get("engineVersion"),
                    "AllocatedStorage": c.get("allocatedStorage"),
                    "StorageEncrypted": bool(c.get("storageEncrypted", False)),
                    "KmsKeyId": c.get("kmsKeyId"),
                    "DBName": c.get("dbName"),
                    "MasterUsername": c.get("username"),
                    "MasterUserPassword": c.get("password"),
                    "Port": c.get("port"),
                    "DBSubnetGroupName": c.get("dbSubnetGroupName"),
                    "BackupRetentionPeriod": c.get("backupRetentionPeriod"),
                    "PreferredBackupWindow": c.get("backupWindow"),
                    "PreferredMaintenanceWindow": c.get("maintenanceWindow"),
                    "CACertificateIdentifier": c.get("caCertIdentifier"),
                }
            )
        )["DBInstance"]
    endpoint = db.get("Endpoint") or {}
    port = int(endpoint.get("Port") or c.get("port") or 5432)
    address = endpoint.get("Address") or f"{identifier}.{b.region}.rds.amazonaws.com"
    outputs: Outputs = {
        "arn": db["DBInstanceArn"],
        "address": address,
        "endpoint": f"{address}:{port}",
        "port": port,
        "resourceId": db.get("DbiResourceId"),
        "status": db.get("DBInstanceStatus", "available"),
        "hostedZoneId": endpoint.get("HostedZoneId"),
        "engine": db.get("Engine"),
        "engineVersionActual": db.get("EngineVersion"),
        "storageEncrypted": bool(db.get("StorageEncrypted")),
    }
    if source:
        outputs["username"] = db.get("MasterUsername")
        outputs["dbSubnetGroupName"] = (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    return identifier, outputs


# ModifyDBInstance arguments by input; identifier, engine, credentials' user, encryption
# and the replica's source replace an instance instead (policies/resource_types.py).
_MODIFIABLE = {
    "instanceClass": "DBInstanceClass",
    "allocatedStorage": "AllocatedStorage",
    "maxAllocatedStorage": "MaxAllocatedStorage",
    "storageType": "StorageType",
    "multiAz": "MultiAZ",
    "backupRetentionPeriod": "BackupRetentionPeriod",
    "backupWindow": "PreferredBackupWindow",
    "maintenanceWindow": "PreferredMaintenanceWindow",
    "vpcSecurityGroupIds": "VpcSecurityGroupIds",
    "parameterGroupName": "DBParameterGroupName",
    "deletionProtection": "DeletionProtection",
    "performanceInsightsEnabled": "EnablePerformanceInsights",
    "performanceInsightsRetentionPeriod": "PerformanceInsightsRetentionPeriod",
    "engineVersion": "EngineVersion",
    "caCertIdentifier": "CACertificateIdentifier",
    "autoMinorVersionUpgrade": "AutoMinorVersionUpgrade",
    "copyTagsToSnapshot": "CopyTagsToSnapshot",
}


@updates(t.RDS_INSTANCE)
def db_instance_settings(b: MotoBackend, c: Call, old: Resource) -> Outputs:
    """ModifyDBInstance with what changed, applied at once as the provider's
    `applyImmediately` would; the instance keeps its identifier and resource id."""
    changed = c.changed_from(old)
    c.refuse_other_changes(old, set(_MODIFIABLE) | {"tags", "applyImmediately"})
    args = {_MODIFIABLE[k]: c.get(k) for k in changed if k in _MODIFIABLE}
    if args:
        b.client("rds").modify_db_instance(
            DBInstanceIdentifier=str(old.id), ApplyImmediately=True, **drop_none(args)
        )
    return {}
