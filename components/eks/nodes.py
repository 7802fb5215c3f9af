"""A managed node group in the private subnets, launched from our own template.

The template is where the node hardening lives: IMDSv2 only, with a hop
limit of 1 so that pods (one network hop away from the node) cannot read the
node role's credentials from the instance metadata service, and an encrypted
gp3 root volume. The instance family must support security groups for pods
(trunk ENIs: no t family) and its architecture must match the app image's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.eks.cluster import trust
from components.firewall import SecurityGroup

NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    # The VPC CNI (aws-node, host network) manages the pods' ENIs with the node's role.
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
)
AMI_TYPES = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}
ROOT_DEVICE = "/dev/xvda"
"""The root device of the EKS-optimised AL2023 AMIs."""

# Graviton families carry a "g" after the generation: m6g, c7gn, r8gd, ...
_GRAVITON = re.compile(r"^[a-z]+\d+g")


def architecture(instance_type: str) -> str:
    """The CPU architecture of an EC2 instance type: arm64 for Graviton, else x86_64."""
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"


@dataclass
class NodeGroupArgs:
    cluster_name: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    """EKS's cluster group: the control plane and the nodes talk through it."""
    version: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    instance_type: str
    count: int
    max_count: int
    disk_gb: int
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()
    """The add-ons nodes need to become Ready (addons.BEFORE_NODES)."""


class NodeGroup(pulumi.ComponentResource):
    node_group: aws.eks.NodeGroup
    launch_template: aws.ec2.LaunchTemplate
    role: aws.iam.Role
    security_group: SecurityGroup
    """Ours, beside EKS's cluster group: what reaches the nodes from outside the cluster
    (the load balancer on the API's NodePort) is admitted here, one rule at a time."""

    def __init__(
        self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:eks:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        arch = architecture(args.instance_type)

        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=trust("ec2.amazonaws.com"), opts=child
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-role-{arn.rsplit('/', 1)[-1].lower()}",
                role=self.role.name,
                policy_arn=arn,
                opts=child,
            )
            for arn in NODE_POLICIES
        ]
        self.security_group = SecurityGroup(
            f"{name}-sg",
            f"{name}: EKS nodes, beside the cluster group",
            args.vpc_id,
            self,
            args.security_group_tags,
        )
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            description=f"{name}: IMDSv2 with hop limit 1, encrypted gp3 root",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.disk_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            # With groups in the template EKS adds none of its own: the cluster group keeps
            # nodes and control plane talking, ours admits the load balancer.
            vpc_security_group_ids=[args.cluster_security_group_id, self.security_group.id],
            update_default_version=True,
            opts=child,
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-group",
            cluster_name=args.cluster_name,
            version=args.version,
            node_role_arn=self.role.arn,
            subnet_ids=list(args.subnet_ids),
            instance_types=[args.instance_type],
            ami_type=AMI_TYPES[arch],
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=args.count, min_size=args.count, max_size=args.max_count
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self.launch_template.id,
                version=self.launch_template.latest_version.apply(str),
            ),
            # One node at a time: PodDisruptionBudgets of maxUnavailable 1 hold during updates.
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*attachments, *args.depends_on],
                # The autoscaler (or an operator) moves the desired size; a deploy must not
                # reset it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        self.register_outputs(
            {
                "node_group": self.node_group.node_group_name,
                "security_group_id": self.security_group.id,
            }
        )

    @property
    def autoscaling_group_name(self) -> pulumi.Output[str]:
        """The Auto Scaling group EKS made for the node group (one per managed group)."""
        return self.node_group.resources.apply(
            lambda rs: rs[0].autoscaling_groups[0].name  # type: ignore[index, union-attr]
        )
