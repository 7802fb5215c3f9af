"""The EKS control plane: a private API endpoint, secrets sealed with our KMS key, every
control-plane log type, and access entries instead of the aws-auth ConfigMap.

Plain pulumi-aws resources (not pulumi-eks, a remote component whose children
the offline runtime never sees). What is decided at creation and replaces the
cluster when changed is fixed here: `bootstrap_self_managed_addons=False` (the
add-ons are our `aws.eks.Addon`s, see addons.py), authentication mode API
without the creator's implicit admin entry, and the KMS envelope encryption.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
"""Every control-plane log type EKS can send to CloudWatch."""
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
    # Lets the control plane create the trunk and branch ENIs of security groups for pods.
    "arn:aws:iam::aws:policy/AmazonEKSVPCResourceController",
)


def trust(service: str) -> str:
    """Trust policy for an AWS service principal; EKS tags the sessions it opens."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    )


@dataclass
class ClusterArgs:
    version: str
    """Kubernetes minor version, e.g. "1.35"."""
    support_type: str
    """STANDARD (auto-upgraded at the end of standard support) or EXTENDED (billed more)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets for the control plane's ENIs."""
    public_access_cidrs: Sequence[str]
    """Networks that may reach the public endpoint; empty turns the public endpoint off."""
    admin_role_arns: Sequence[pulumi.Input[str]]
    """IAM roles given cluster admin through access entries (the deploy role)."""
    log_retention_days: int
    protect: bool
    tags: Mapping[str, str] = field(default_factory=dict)


class Cluster(pulumi.ComponentResource):
    """An EKS control plane and who may administer it."""

    cluster: aws.eks.Cluster
    name: pulumi.Output[str]
    key: aws.kms.Key
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    admins: list[aws.eks.AccessPolicyAssociation]

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:eks:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The name is known before the cluster exists, so its log group can be created first
        # with our retention (EKS would otherwise create it, kept forever); the random part
        # keeps physical names unique across stacks and replacements.
        suffix = random.RandomId(f"{name}-suffix", byte_length=4, opts=child)
        cluster_name = suffix.hex.apply(lambda h: f"{name}-{h}")
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=cluster_name.apply(lambda n: f"/aws/eks/{n}/cluster"),
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        self.key = aws.kms.Key(
            f"{name}-secrets",
            description=f"{name}: envelope encryption of Kubernetes secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # The cluster cannot read its secrets without this key: it lives as long.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=trust("eks.amazonaws.com"), opts=child
        )
        attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-role-{arn.rsplit('/', 1)[-1].lower()}",
                role=self.role.name,
                policy_arn=arn,
                opts=child,
            )
            for arn in CLUSTER_POLICIES
        ]
        attachments.append(
            aws.iam.RolePolicy(
                f"{name}-role-kms",
                role=self.role.name,
                policy=pulumi.Output.json_dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "kms:Encrypt",
                                    "kms:Decrypt",
                                    "kms:ListGrants",
                                    "kms:DescribeKey",
                                ],
                                "Resource": [self.key.arn],
                            }
                        ],
                    }
                ),
                opts=child,
            )
        )

        public = bool(args.public_access_cidrs)
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=cluster_name,
            version=args.version,
            role_arn=self.role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=public,
                # Unset with a public endpoint, AWS opens it to 0.0.0.0/0.
                public_access_cidrs=list(args.public_access_cidrs) if public else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # Replaces the cluster if changed: decided once, add-ons are ours (addons.py).
            bootstrap_self_managed_addons=False,
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.key.arn),
            ),
            enabled_cluster_log_types=list(LOG_TYPES),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=args.support_type),
            deletion_protection=args.protect,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # EKS needs the role's permissions while it creates and deletes its ENIs and
                # security group; the log group must exist before EKS writes to it.
                depends_on=[*attachments, self.log_group],
            ),
        )
        self.name = self.cluster.name

        self.admins = []
        for i, principal in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{i}",
                cluster_name=self.cluster.name,
                principal_arn=principal,
                type="STANDARD",
                opts=child,
            )
            self.admins.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin-{i}",
                    cluster_name=self.cluster.name,
                    principal_arn=principal,
                    policy_arn=ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
                )
            )

        self.register_outputs(
            {
                "name": self.cluster.name,
                "endpoint": self.cluster.endpoint,
                "security_group_id": self.security_group_id,
            }
        )

    @property
    def security_group_id(self) -> pulumi.Output[str]:
        """The group EKS creates for the control plane and managed nodes: it admits itself."""
        return self.cluster.vpc_config.cluster_security_group_id  # type: ignore[return-value]
