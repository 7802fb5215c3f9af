"""Every resource type the project knows, with what it takes to plan, price and protect it.

One entry per type: whether losing it loses data (`stateful`), which inputs make
AWS replace it (`replaced_by`, curated from the `ForceNew` arguments of the
terraform-provider-aws schemas that pulumi-aws bridges), how the offline
runtime names and identifies it, which pricing rule bills it (`cost`), and
whether the emulator can create it. A new type is one entry here, plus its
echo outputs and emulator handler on the tooling side (coldreach/runtime/).

The pack imports nothing outside itself and `pulumi_policy`; this module
imports nothing at all beyond the tokens, so the tooling can read it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies import tokens as t


@dataclass(frozen=True)
class ResourceType:
    token: str
    id: str | None = None
    """How the offline runtime identifies it: `prefix-` for a hex id (`vpc-` -> vpc-0a1b...),
    `@key` to use that output as the id; None for `<type>-<hex>`."""
    name_key: str | None = None
    """The input Pulumi autonames when the program leaves it unset."""
    max_name: int = 63
    lower: bool = False
    id_suffix: str = ""
    """Appended to an `@key` id where AWS reuses the parent's id (S3 bucket settings, ...),
    so every resource still has an id of its own."""
    stateful: bool = False
    """Losing it loses data or identity: it carries `protect`, and a promotion must never
    replace or delete it."""
    replaced_by: tuple[str, ...] = ()
    """Inputs whose change replaces it (a new one created, the old one deleted); a dotted
    path names a field inside a block (`brokerNodeGroupInfo.clientSubnets`)."""
    cost: str | None = None
    """The pricing rule that bills it (coldreach/cost.py); None when it costs nothing."""
    emulated: bool = True
    """False: rendered, not deployed. The emulator has no handler (moto cannot hold it),
    so the moto backend answers it as the echo backend does and lists it as rendered."""


_S3_NAME = ("bucket", "bucketPrefix")

TYPES: dict[str, ResourceType] = {
    r.token: r
    for r in (
        # --- network -----------------------------------------------------------------------
        ResourceType(t.VPC, "vpc-"),
        ResourceType(t.SUBNET, "subnet-"),
        ResourceType(t.INTERNET_GATEWAY, "igw-"),
        ResourceType(t.ROUTE_TABLE, "rtb-"),
        ResourceType(t.ROUTE, "r-"),
        ResourceType(t.ROUTE_TABLE_ASSOCIATION, "rtbassoc-"),
        ResourceType(t.DEFAULT_SG, "sg-"),
        ResourceType(
            t.SECURITY_GROUP,
            "sg-",
            name_key="name",
            max_name=255,
            replaced_by=("name", "namePrefix", "description", "vpcId"),
        ),
        ResourceType(t.INGRESS, "sgr-"),
        ResourceType(t.EGRESS, "sgr-"),
        ResourceType(t.FLOW_LOG, "fl-"),
        ResourceType(t.EIP, "eipalloc-", cost="eip"),
        ResourceType(t.NAT_GATEWAY, "nat-", cost="nat_gateway"),
        ResourceType(t.VPC_ENDPOINT, "vpce-", cost="vpc_endpoint"),
        # --- logs, IAM, keys, secrets --------------------------------------------------------
        ResourceType(t.LOG_GROUP, "@name", name_key="name", max_name=512),
        ResourceType(t.IAM_ROLE, "@name", name_key="name", max_name=64),
        ResourceType(t.IAM_ROLE_POLICY, "@name", name_key="name", max_name=128),
        ResourceType(t.IAM_ATTACHMENT, "rolepolicyattachment-"),
        ResourceType(t.KMS_KEY, "@keyId", cost="kms_key"),
        ResourceType(
            t.SECRET,
            "@arn",
            name_key="name",
            max_name=512,
            stateful=True,
            replaced_by=("name", "namePrefix"),
            cost="secret",
        ),
        ResourceType(t.SECRET_VERSION, "@versionId"),
        # AWS names a rotation by its secret's ARN.
        ResourceType(t.SECRET_ROTATION, "@secretId", id_suffix="/rotation"),
        ResourceType(t.RANDOM_PASSWORD, "password-"),
        ResourceType(t.RANDOM_ID, "@b64Url"),
        # --- data tiers ----------------------------------------------------------------------
        ResourceType(t.RDS_SUBNET_GROUP, "@name", name_key="name", max_name=255, lower=True),
        ResourceType(t.RDS_PARAMETER_GROUP, "@name", name_key="name", max_name=255, lower=True),
        ResourceType(
            t.RDS_INSTANCE,
            "@identifier",
            name_key="identifier",
            lower=True,
            stateful=True,
            replaced_by=(
                "identifier",
                "identifierPrefix",
                "engine",
                "username",
                "dbName",
                "storageEncrypted",
                "kmsKeyId",
                "availabilityZone",
                "characterSetName",
                "timezone",
                "snapshotIdentifier",
                "replicateSourceDb",
            ),
            cost="rds_instance",
        ),
        ResourceType(t.CACHE_SUBNET_GROUP, "@name", name_key="name", max_name=255, lower=True),
        ResourceType(
            t.REPLICATION_GROUP,
            "@replicationGroupId",
            name_key="replicationGroupId",
            max_name=40,
            lower=True,
            stateful=True,
            replaced_by=(
                "replicationGroupId",
                "subnetGroupName",
                "port",
                "atRestEncryptionEnabled",
                "kmsKeyId",
                "networkType",
                "dataTieringEnabled",
                "snapshotArns",
                "snapshotName",
            ),
            cost="replication_group",
        ),
        # Both S3 bucket types hold objects. pulumi-aws 7 renamed BucketV2 to Bucket and
        # keeps BucketV2 as a deprecated alias, so a stack may carry either: same data,
        # same protection, same replacement inputs.
        ResourceType(
            t.BUCKET,
            "@bucket",
            name_key="bucket",
            lower=True,
            stateful=True,
            replaced_by=_S3_NAME,
        ),
        ResourceType(t.BUCKET_V2, stateful=True, replaced_by=_S3_NAME, emulated=False),
        ResourceType(t.BUCKET_PUBLIC_ACCESS_BLOCK, "@bucket", id_suffix="/public-access-block"),
        ResourceType(t.BUCKET_OWNERSHIP, "@bucket", id_suffix="/ownership"),
        ResourceType(t.BUCKET_ENCRYPTION, "@bucket", id_suffix="/encryption"),
        ResourceType(t.BUCKET_LIFECYCLE, "@bucket", id_suffix="/lifecycle"),
        ResourceType(t.BUCKET_POLICY, "@bucket", id_suffix="/policy"),
        # --- images and compute --------------------------------------------------------------
        ResourceType(
            t.ECR_REPOSITORY,
            "@name",
            name_key="name",
            max_name=256,
            lower=True,
            stateful=True,
            replaced_by=("name",),
            cost="repository",
        ),
        ResourceType(t.ECR_LIFECYCLE, "@repository", id_suffix="/lifecycle"),
        ResourceType(t.DOCKER_IMAGE, "@ref"),
        ResourceType(t.ECS_CLUSTER, "@arn", name_key="name", max_name=255),
        # Every argument but tags is ForceNew: a changed container definition is a new
        # revision (the old one deregistered), never an update in place.
        ResourceType(
            t.TASK_DEFINITION,
            "@family",
            replaced_by=(
                "family",
                "containerDefinitions",
                "cpu",
                "memory",
                "networkMode",
                "executionRoleArn",
                "taskRoleArn",
                "requiresCompatibilities",
                "runtimePlatform",
                "volumes",
            ),
        ),
        ResourceType(t.ECS_SERVICE, "@arn", name_key="name", max_name=255, cost="ecs_service"),
        ResourceType(t.SCALING_TARGET, "@resourceId"),
        # A handful of invocations a month (one rotation, four steps): within the free tier.
        ResourceType(t.LAMBDA_FUNCTION, "@name", name_key="name", max_name=64),
        ResourceType(t.LAMBDA_PERMISSION, "@statementId", name_key="statementId", max_name=100),
        ResourceType(t.SCALING_POLICY, "@name", name_key="name", max_name=255),
        ResourceType(
            t.EKS_CLUSTER,
            "@name",
            name_key="name",
            max_name=100,
            stateful=True,
            # encryptionConfig: adding it is in place, removing it replaces the cluster.
            replaced_by=(
                "name",
                "roleArn",
                "encryptionConfig",
                "bootstrapSelfManagedAddons",
                "accessConfig.bootstrapClusterCreatorAdminPermissions",
                "kubernetesNetworkConfig.ipFamily",
                "kubernetesNetworkConfig.serviceIpv4Cidr",
                "remoteNetworkConfig",
            ),
            cost="eks_cluster",
        ),
        ResourceType(
            t.EKS_NODE_GROUP, "@nodeGroupName", name_key="nodeGroupName", cost="eks_node_group"
        ),
        ResourceType(t.LAUNCH_TEMPLATE, "lt-", name_key="name", max_name=128),
        # Rendered, not deployed: moto has no EKS add-ons, access entries or Pod Identity
        # associations, and the node group's Auto Scaling group exists there only as a name.
        ResourceType(t.EKS_ADDON, emulated=False),
        ResourceType(t.EKS_ACCESS_ENTRY, emulated=False),
        ResourceType(t.EKS_ACCESS_POLICY, emulated=False),
        ResourceType(t.EKS_POD_IDENTITY, emulated=False),
        ResourceType(t.ASG_ATTACHMENT, "asgattach-", emulated=False),
        ResourceType(
            t.MSK_CLUSTER,
            "@arn",
            name_key="clusterName",
            max_name=64,
            stateful=True,
            # kafkaVersion: an upgrade is in place, but the metadata mode (ZooKeeper or
            # KRaft) is fixed at creation, so a promotion must never change it.
            replaced_by=(
                "clusterName",
                "kafkaVersion",
                "encryptionInfo",
                "brokerNodeGroupInfo.clientSubnets",
                "brokerNodeGroupInfo.securityGroups",
                "brokerNodeGroupInfo.azDistribution",
            ),
            cost="msk_cluster",
        ),
        ResourceType(t.MSK_CONFIGURATION, "@arn", name_key="name", emulated=False),
        # A topic holds the queued sends; MSK's topic API has no emulator (moto lacks it).
        ResourceType(
            t.MSK_TOPIC,
            "@arn",
            stateful=True,
            replaced_by=("clusterArn", "name", "replicationFactor"),
            emulated=False,
        ),
        # --- the cluster's workloads: rendered, not deployed (no emulator holds Kubernetes
        # objects; tests validate their manifests instead, coldreach/manifests.py) -----------
        *(
            ResourceType(token, emulated=False)
            for token in (
                t.K8S_PROVIDER,
                t.K8S_NAMESPACE,
                t.K8S_SERVICE_ACCOUNT,
                t.K8S_CONFIG_MAP,
                t.K8S_PVC,
                t.K8S_STORAGE_CLASS,
                t.K8S_SERVICE,
                t.K8S_NETWORK_POLICY,
                t.K8S_PDB,
                t.K8S_HPA,
                t.K8S_SECURITY_GROUP_POLICY,
                *t.POD_CONTROLLERS,
            )
        ),
        # --- edge ----------------------------------------------------------------------------
        ResourceType(t.LOAD_BALANCER, "@arn", name_key="name", max_name=32, cost="load_balancer"),
        ResourceType(t.TARGET_GROUP, "@arn", name_key="name", max_name=32),
        ResourceType(t.LISTENER, "@arn"),
        ResourceType(t.WAF_ACL, "webacl-", name_key="name", max_name=128, cost="web_acl"),
        ResourceType(t.WAF_ASSOCIATION, "@webAclArn", id_suffix="/association"),
        ResourceType(t.WAF_LOGGING, "@resourceArn", id_suffix="/logging"),
        # --- mail ----------------------------------------------------------------------------
        ResourceType(t.EMAIL_IDENTITY, "@emailIdentity", cost="email_identity"),
        ResourceType(t.CONFIGURATION_SET, "@configurationSetName"),
        ResourceType(t.EVENT_DESTINATION, "cse-"),
        ResourceType(t.SNS_TOPIC, "@arn", name_key="name", max_name=256),
        ResourceType(t.SNS_TOPIC_POLICY, "@arn", id_suffix="/policy"),
        ResourceType(t.SNS_SUBSCRIPTION, "subscription-"),
        # --- observability -------------------------------------------------------------------
        ResourceType(t.METRIC_ALARM, "@alarmName", name_key="alarmName", max_name=255),
    )
}

STATEFUL: tuple[str, ...] = tuple(token for token, r in TYPES.items() if r.stateful)
