"""The cluster's EKS add-ons, in the order nodes need them.

The cluster is created with `bootstrap_self_managed_addons=False`, so nothing
runs until these exist. Networking (vpc-cni, kube-proxy) and the Pod Identity
agent go in before the node group, or nodes never become Ready and pods
cannot get credentials; CoreDNS and metrics-server are Deployments and wait
for nodes (created earlier, they sit degraded and the add-on times out).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

VPC_CNI = "vpc-cni"
BEFORE_NODES = (VPC_CNI, "kube-proxy", "eks-pod-identity-agent")
AFTER_NODES = ("coredns", "metrics-server")

VPC_CNI_CONFIGURATION = {
    # NetworkPolicies are ignored unless the CNI's policy agent enforces them.
    "enableNetworkPolicy": "true",
    "env": {
        # Security groups for pods: branch ENIs carry each pod's own group, so the data
        # tiers keep admitting only the services the topology names.
        "ENABLE_POD_ENI": "true",
        # standard, not the default strict: in strict mode a pod with its own group cannot
        # reach the Pod Identity agent on the node's link-local address, so no workload
        # would get AWS credentials (EKS User Guide, Pod Identity considerations;
        # aws/amazon-vpc-cni-k8s#2797, aws/amazon-vpc-resource-controller-k8s#618). Traffic
        # leaving the VPC then takes the node's group; the tiers still see the pods' own.
        "POD_SECURITY_GROUP_ENFORCING_MODE": "standard",
    },
    # kubelet's TCP probes reach pods on branch ENIs only with early demux off (EKS guide,
    # "Configure the Amazon VPC CNI plugin for security groups for pods").
    "init": {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}},
}


def configuration(addon: str) -> str | None:
    return json.dumps(VPC_CNI_CONFIGURATION, sort_keys=True) if addon == VPC_CNI else None


def _version(
    addon: str, kubernetes_version: pulumi.Input[str], parent: pulumi.Resource
) -> pulumi.Output[str]:
    return aws.eks.get_addon_version_output(
        addon_name=addon,
        kubernetes_version=kubernetes_version,
        most_recent=False,
        opts=pulumi.InvokeOptions(parent=parent),
    ).version


def install(
    name: str,
    cluster_name: pulumi.Input[str],
    kubernetes_version: pulumi.Input[str],
    addons: Sequence[str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> list[aws.eks.Addon]:
    """One managed add-on each, at the default version EKS pairs with the cluster's
    Kubernetes version. Asked for explicitly: left unset, an add-on keeps the version it was
    created with when the cluster is upgraded (kube-proxy then lags the control plane)."""
    return [
        aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster_name,
            addon_name=addon,
            addon_version=_version(addon, kubernetes_version, parent),
            configuration_values=configuration(addon),
            # Ours wins over whatever a node bootstrap left behind; on update, our
            # configuration is applied again rather than preserved drift.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )
        for addon in addons
    ]


EBS_CSI = "aws-ebs-csi-driver"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def ebs_csi(
    name: str,
    cluster_name: pulumi.Input[str],
    kubernetes_version: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.eks.Addon:
    """The EBS CSI driver, for workloads that claim a volume (`ebs.csi.aws.com`): without it
    a PersistentVolumeClaim stays Pending. Its controller creates and attaches volumes with
    a role of its own through Pod Identity (AWS's managed policy for the driver)."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        description="EBS CSI driver controller (EKS Pod Identity)",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "pods.eks.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                    }
                ],
            }
        ),
        opts=opts,
    )
    attachment = aws.iam.RolePolicyAttachment(
        f"{name}-role-policy", role=role.name, policy_arn=EBS_CSI_POLICY, opts=opts
    )
    return aws.eks.Addon(
        name,
        cluster_name=cluster_name,
        addon_name=EBS_CSI,
        addon_version=_version(EBS_CSI, kubernetes_version, parent),
        pod_identity_associations=[
            aws.eks.AddonPodIdentityAssociationArgs(
                role_arn=role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT
            )
        ],
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[attachment, *depends_on]),
    )
