"""Rules for what holds data: RDS, ElastiCache, secrets, log groups, and `protect`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies import tokens as t
from policies.model import (
    ADVISORY,
    is_true,
    items,
    known_text,
    mapping,
    of_type,
    present,
    property_rule,
    resource_rule,
    stack_rule,
    strings,
)
from policies.resource_types import STATEFUL

ADMIN_NAMES = frozenset({"postgres", "admin", "administrator", "root", "master", "sa", "rdsadmin"})
CURRENT_RDS_CAS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1")
LOG_EXPORTS = {"postgres": "postgresql", "mysql": "error", "mariadb": "error"}


def _replica(props: Any) -> bool:
    return present(props, "replicateSourceDb")


# --- RDS -----------------------------------------------------------------------------------


property_rule(
    "D1",
    "rds-storage-encrypted",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.3", "CIS 2.3.1", "CKV_AWS_16", "AVD-AWS-0080", "AG rds-storage-encrypted"),
    severity=Severity.HIGH,
    description="Storage is encrypted (a replica inherits it from its source)",
    prop="storageEncrypted",
    must_be=True,
    exempt=_replica,
    message="storageEncrypted is not true (and cannot be turned on later in place)",
)


@resource_rule(
    "D2",
    "rds-not-public",
    types=t.RDS_INSTANCE,
    sources=(
        "SH RDS.2",
        "CIS 2.3.3",
        "CKV_AWS_17",
        "AVD-AWS-0180",
        "AG rds-instance-public-access",
    ),
    severity=Severity.CRITICAL,
    description="Instances are not publicly accessible, sit in our subnet group and our groups",
)
def rds_not_public(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    if is_true(p.get("publiclyAccessible")):
        yield "publiclyAccessible is true"
    if not present(p, "vpcSecurityGroupIds"):
        yield "no vpcSecurityGroupIds: the VPC's default security group would apply"
    if not _replica(p) and not present(p, "dbSubnetGroupName"):
        yield "no dbSubnetGroupName: the instance would land in the default VPC"


@resource_rule(
    "D3a",
    "rds-backup-retention",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.11", "CKV_AWS_133", "AVD-AWS-0077", "AG rds-instance-backup-enabled"),
    severity=Severity.HIGH,
    description="Automated backups are kept at least 7 days (set explicitly)",
    config={"minimumDays": {"type": "integer", "minimum": 1, "default": 7}},
)
def rds_backup_retention(args: ResourceValidationArgs) -> Iterator[str]:
    minimum = int(args.get_config().get("minimumDays", 7))
    days = args.props.get("backupRetentionPeriod")
    if days is None:
        yield f"backupRetentionPeriod is not set (the provider default is 0); want >= {minimum}"
    elif int(days) < minimum:
        yield f"backupRetentionPeriod is {days}; want >= {minimum}"


@resource_rule(
    "D3b",
    "rds-deletion-protection",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.8", "CKV_AWS_293", "AVD-AWS-0177"),
    severity=Severity.HIGH,
    description="Deletion protection on; a primary takes a final snapshot when deleted",
)
def rds_deletion_protection(args: ResourceValidationArgs) -> Iterator[str]:
    if not is_true(args.props.get("deletionProtection")):
        yield "deletionProtection is not true"
    if not _replica(args.props) and is_true(args.props.get("skipFinalSnapshot")):
        yield "skipFinalSnapshot is true: deleting the primary would keep no snapshot"


property_rule(
    "D4",
    "rds-iam-authentication",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.10", "CKV_AWS_161", "AVD-AWS-0176"),
    severity=Severity.MEDIUM,
    description="IAM database authentication is enabled",
    prop="iamDatabaseAuthenticationEnabled",
    must_be=True,
    message="iamDatabaseAuthenticationEnabled is not true",
)


@resource_rule(
    "D5",
    "rds-log-exports",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.9", "CKV_AWS_129"),
    severity=Severity.MEDIUM,
    description="Database logs are exported to CloudWatch (postgresql for PostgreSQL)",
)
def rds_log_exports(args: ResourceValidationArgs) -> Iterator[str]:
    exports = strings(args.props.get("enabledCloudwatchLogsExports"))
    wanted = LOG_EXPORTS.get(str(args.props.get("engine") or "postgres"))
    if not exports:
        yield "enabledCloudwatchLogsExports is empty"
    elif wanted and wanted not in exports:
        yield f"enabledCloudwatchLogsExports lacks {wanted}"


@resource_rule(
    "D6a",
    "rds-current-ca",
    types=t.RDS_INSTANCE,
    sources=("CKV_AWS_211",),
    severity=Severity.MEDIUM,
    description="The server certificate authority is pinned to a current one",
)
def rds_current_ca(args: ResourceValidationArgs) -> Iterator[str]:
    ca = args.props.get("caCertIdentifier")
    if ca not in CURRENT_RDS_CAS:
        yield f"caCertIdentifier is {ca or 'not set'}; want one of {', '.join(CURRENT_RDS_CAS)}"


property_rule(
    "D7a",
    "rds-auto-minor-upgrade",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.13", "CKV_AWS_226"),
    severity=Severity.LOW,
    description="Minor engine upgrades are applied automatically",
    prop="autoMinorVersionUpgrade",
    must_not_be=False,
    message="autoMinorVersionUpgrade is false",
)


property_rule(
    "D7b",
    "rds-copy-tags-to-snapshots",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.17",),
    severity=Severity.LOW,
    description="Tags are copied to snapshots",
    prop="copyTagsToSnapshot",
    must_be=True,
    message="copyTagsToSnapshot is not true",
)


@resource_rule(
    "D7c",
    "rds-custom-admin-username",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.25", "CKV2_AWS_60"),
    severity=Severity.LOW,
    description="The master user is not a well-known name (postgres, admin, root, ...)",
)
def rds_admin_username(args: ResourceValidationArgs) -> Iterator[str]:
    if _replica(args.props):
        return
    username = args.props.get("username")
    if not username:
        yield "username is not set"
    elif str(username).lower() in ADMIN_NAMES:
        yield f"username {username} is a default admin name"


property_rule(
    "D8a",
    "rds-performance-insights",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.6 (part)", "CKV_AWS_118", "CKV_AWS_353", "AVD-AWS-0133"),
    severity=Severity.LOW,
    description="Performance Insights is on (7 days are free)",
    prop="performanceInsightsEnabled",
    must_be=True,
    message="performanceInsightsEnabled is not true",
)


@resource_rule(
    "D8b",
    "rds-enhanced-monitoring",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.6", "CKV_AWS_118"),
    severity=Severity.LOW,
    description="Enhanced monitoring at 60 s or finer, with its role (phase 2 cost; advisory)",
    enforcement=ADVISORY,
)
def rds_enhanced_monitoring(args: ResourceValidationArgs) -> Iterator[str]:
    interval = int(args.props.get("monitoringInterval") or 0)
    if interval <= 0 or interval > 60 or not present(args.props, "monitoringRoleArn"):
        yield "enhanced monitoring is off (monitoringInterval <= 60 with monitoringRoleArn)"


property_rule(
    "D9",
    "rds-multi-az",
    types=t.RDS_INSTANCE,
    sources=("SH RDS.5", "CIS v6 3.2.4", "CKV_AWS_157", "AG rds-instance-multi-az-enabled"),
    severity=Severity.MEDIUM,
    description="The primary is Multi-AZ (mandatory in prod, advisory elsewhere)",
    prop="multiAz",
    must_be=True,
    exempt=_replica,
    message="multiAz is not true: losing one AZ stops the database",
)


@stack_rule(
    "S1",
    "rds-credentials-rotation",
    sources=("SH SecretsManager.1", "SH SecretsManager.4", "CKV2_AWS_57", "CKV_AWS_304"),
    severity=Severity.MEDIUM,
    description="Database master credentials rotate (RDS-managed or a SecretRotation)",
    enforcement=ADVISORY,
)
def rds_credentials_rotation(args: StackValidationArgs) -> Iterator[tuple[str | None, str]]:
    rotations = of_type(args, t.SECRET_ROTATION)
    for db in of_type(args, t.RDS_INSTANCE):
        if _replica(db.props) or is_true(db.props.get("manageMasterUserPassword")):
            continue
        if not rotations:
            yield db.urn, "the master password never rotates (no SecretRotation in the stack)"


# --- ElastiCache ---------------------------------------------------------------------------


property_rule(
    "C1",
    "elasticache-encrypted-at-rest",
    types=t.REPLICATION_GROUP,
    sources=("SH ElastiCache.4", "CKV_AWS_29", "AVD-AWS-0045"),
    severity=Severity.HIGH,
    description="Encryption at rest (only settable at creation)",
    prop="atRestEncryptionEnabled",
    must_be=True,
    message="atRestEncryptionEnabled is not true",
)


@resource_rule(
    "C2",
    "elasticache-tls-and-auth",
    types=t.REPLICATION_GROUP,
    sources=("SH ElastiCache.5", "SH ElastiCache.6", "CKV_AWS_30", "CKV_AWS_31", "AVD-AWS-0051"),
    severity=Severity.HIGH,
    description="TLS required in transit, and clients authenticate (AUTH token or RBAC)",
)
def cache_tls_auth(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    if not is_true(p.get("transitEncryptionEnabled")):
        yield "transitEncryptionEnabled is not true"
    elif p.get("transitEncryptionMode") == "preferred":
        yield "transitEncryptionMode is preferred: plaintext clients are still accepted"
    if not present(p, "authToken") and not present(p, "userGroupIds"):
        yield "no authToken and no userGroupIds: any client in the group may connect"


@resource_rule(
    "C3a",
    "elasticache-snapshots",
    types=t.REPLICATION_GROUP,
    sources=("SH ElastiCache.1", "PP elasticache-backup-retention"),
    severity=Severity.MEDIUM,
    description="Automatic snapshots are kept at least a day",
)
def cache_snapshots(args: ResourceValidationArgs) -> Iterator[str]:
    if int(args.props.get("snapshotRetentionLimit") or 0) < 1:
        yield "snapshotRetentionLimit is 0 or not set: no automatic snapshots"


property_rule(
    "C3b",
    "elasticache-auto-minor-upgrade",
    types=t.REPLICATION_GROUP,
    sources=("SH ElastiCache.2",),
    severity=Severity.LOW,
    description="Minor engine upgrades are applied automatically",
    prop="autoMinorVersionUpgrade",
    must_not_be=False,
    message="autoMinorVersionUpgrade is false",
)


@resource_rule(
    "C3c",
    "elasticache-own-subnets-and-group",
    types=t.REPLICATION_GROUP,
    sources=("SH ElastiCache.7",),
    severity=Severity.MEDIUM,
    description="The cache uses its own subnet group and security groups, not the defaults",
)
def cache_own_network(args: ResourceValidationArgs) -> Iterator[str]:
    if not present(args.props, "subnetGroupName"):
        yield "no subnetGroupName: the default subnet group would apply"
    if not present(args.props, "securityGroupIds"):
        yield "no securityGroupIds: the VPC's default security group would apply"


@resource_rule(
    "C4",
    "elasticache-automatic-failover",
    types=t.REPLICATION_GROUP,
    sources=("SH ElastiCache.3", "CKV2_AWS_50"),
    severity=Severity.MEDIUM,
    description="Automatic failover across AZs, 2+ nodes (mandatory in prod, advisory elsewhere)",
)
def cache_failover(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    nodes = int(p.get("numCacheClusters") or 1)
    if not is_true(p.get("automaticFailoverEnabled")):
        yield "automaticFailoverEnabled is not true"
    if not is_true(p.get("multiAzEnabled")):
        yield "multiAzEnabled is not true"
    if nodes < 2 and int(p.get("replicasPerNodeGroup") or 0) < 1:
        yield f"{nodes} node: failover needs a replica"


# --- Secrets, logs, keys -------------------------------------------------------------------


@resource_rule(
    "L1",
    "log-group-retention",
    types=t.LOG_GROUP,
    sources=("CKV_AWS_66", "CKV_AWS_338", "AWS Config cw-loggroup-retention-period-check"),
    severity=Severity.LOW,
    description="Log groups expire their events (at least `minimumDays`; 365 in prod)",
    config={"minimumDays": {"type": "integer", "minimum": 1, "default": 1}},
)
def log_retention(args: ResourceValidationArgs) -> Iterator[str]:
    minimum = int(args.get_config().get("minimumDays", 1))
    days = int(args.props.get("retentionInDays") or 0)
    if days == 0:
        yield "retentionInDays is not set: events are kept forever"
    elif days < minimum:
        yield f"retentionInDays is {days}; want >= {minimum}"


@resource_rule(
    "KMS",
    "customer-managed-kms-keys",
    types=(t.SECRET, t.LOG_GROUP, t.ECR_REPOSITORY, t.REPLICATION_GROUP, t.RDS_INSTANCE),
    sources=(
        "CKV_AWS_149",
        "CKV_AWS_158",
        "CKV_AWS_136",
        "CKV_AWS_191",
        "AVD-AWS-0098",
        "AVD-AWS-0033",
        "AVD-AWS-0017",
    ),
    severity=Severity.LOW,
    description="Data is encrypted with customer-managed KMS keys (phase 2 cost; advisory)",
    enforcement=ADVISORY,
)
def customer_managed_keys(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    if args.resource_type == t.ECR_REPOSITORY:
        configs = [mapping(c) for c in items(p.get("encryptionConfigurations"))]
        if not any(c.get("encryptionType") == "KMS" and present(c, "kmsKey") for c in configs):
            yield "encrypted with the AWS-owned key, not a customer-managed KMS key"
    elif args.resource_type == t.RDS_INSTANCE:
        if not _replica(p) and not present(p, "kmsKeyId"):
            yield "storage uses the aws/rds key, not a customer-managed KMS key"
    else:
        if not present(p, "kmsKeyId") or "alias/aws/" in known_text(p, "kmsKeyId"):
            yield "encrypted with an AWS-managed key, not a customer-managed KMS key"


@resource_rule(
    "X1",
    "stateful-resources-protected",
    types=STATEFUL,
    sources=("Cold Reach DESIGN decision 3",),
    severity=Severity.CRITICAL,
    description=(
        "Databases, caches, repositories, secrets and buckets carry `protect`, so no update "
        "can delete or replace them"
    ),
)
def stateful_protected(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.opts.protect:
        yield "not protected: a replacement or `pulumi destroy` would delete its data"
