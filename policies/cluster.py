"""EKS rules: the control plane's endpoint, encryption, logs and access, the nodes'
instance metadata and family, and the VPC CNI settings the pod-level isolation needs."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies import tokens as t
from policies.model import (
    ADVISORY,
    WORLD,
    is_false,
    is_true,
    mapping,
    present,
    resource_rule,
    strings,
)

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
WIDEST_PUBLIC_PREFIX = 16
"""A public endpoint's allowed networks are a runner fleet's, never wider than this."""


@resource_rule(
    "K1a",
    "eks-endpoint-not-open-to-the-internet",
    types=t.EKS_CLUSTER,
    sources=("CKV_AWS_38", "AVD-AWS-0041", "PP eks-cluster-endpoint-restrict-public-access"),
    severity=Severity.CRITICAL,
    description=(
        "The private endpoint is on; a public endpoint admits only listed networks (the SDK "
        "default is the whole internet), none of them 0.0.0.0/0 or wider than a /16"
    ),
)
def eks_endpoint_restricted(args: ResourceValidationArgs) -> Iterator[str]:
    vpc = mapping(args.props.get("vpcConfig"))
    if not is_true(vpc.get("endpointPrivateAccess")):
        yield "endpointPrivateAccess is not true: nodes and pods reach the API over the internet"
    if is_false(vpc.get("endpointPublicAccess")):
        return
    cidrs = strings(vpc.get("publicAccessCidrs"))
    if not cidrs:
        yield "the public endpoint has no publicAccessCidrs, so AWS opens it to 0.0.0.0/0"
    for cidr in cidrs:
        if cidr in WORLD:
            yield f"the public endpoint admits {cidr}"
            continue
        try:
            prefix = ipaddress.ip_network(cidr, strict=False).prefixlen
        except ValueError:
            yield f"publicAccessCidrs holds {cidr!r}, not a network"
            continue
        if prefix < WIDEST_PUBLIC_PREFIX:
            yield f"the public endpoint admits {cidr}, wider than a /{WIDEST_PUBLIC_PREFIX}"


@resource_rule(
    "K1b",
    "eks-endpoint-private",
    types=t.EKS_CLUSTER,
    sources=("SH EKS.1", "CKV_AWS_39", "AVD-AWS-0040"),
    severity=Severity.HIGH,
    enforcement=ADVISORY,
    description=(
        "The API endpoint is private only (advisory: GitHub-hosted runners need a public "
        "endpoint restricted to their networks, docs/cluster.md)"
    ),
)
def eks_endpoint_private(args: ResourceValidationArgs) -> Iterator[str]:
    vpc = mapping(args.props.get("vpcConfig"))
    if not is_false(vpc.get("endpointPublicAccess")):
        yield "the public endpoint is on"


@resource_rule(
    "K2",
    "eks-secrets-encrypted",
    types=t.EKS_CLUSTER,
    sources=("AWS Config eks-secrets-encrypted", "CKV_AWS_58", "AVD-AWS-0039"),
    severity=Severity.HIGH,
    description="Kubernetes secrets are envelope-encrypted with a KMS key",
)
def eks_secrets_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    config = mapping(args.props.get("encryptionConfig"))
    if "secrets" not in strings(config.get("resources")):
        yield "encryptionConfig does not cover secrets"
    elif not present(mapping(config.get("provider")), "keyArn"):
        yield "encryptionConfig names no KMS key"


@resource_rule(
    "K3",
    "eks-control-plane-logs",
    types=t.EKS_CLUSTER,
    sources=("SH EKS.8", "CKV_AWS_37", "AVD-AWS-0038"),
    severity=Severity.MEDIUM,
    description="Every control-plane log type goes to CloudWatch (audit at the very least)",
)
def eks_logs(args: ResourceValidationArgs) -> Iterator[str]:
    enabled = set(strings(args.props.get("enabledClusterLogTypes")))
    missing = [log for log in LOG_TYPES if log not in enabled]
    if missing:
        yield f"control-plane logs off: {', '.join(missing)}"


@resource_rule(
    "K5",
    "eks-access-entries-only",
    types=t.EKS_CLUSTER,
    sources=("EKS best practices: access entries", "terraform-aws-eks v21 defaults"),
    severity=Severity.MEDIUM,
    description=(
        "Access is by access entries only (authentication mode API), the creator gets no "
        "implicit admin, and the self-managed add-ons are decided (false): the last two "
        "replace the cluster if changed later"
    ),
)
def eks_access_entries(args: ResourceValidationArgs) -> Iterator[str]:
    access = mapping(args.props.get("accessConfig"))
    if access.get("authenticationMode") != "API":
        mode = access.get("authenticationMode") or "unset (CONFIG_MAP)"
        yield f"authenticationMode is {mode}: the aws-auth ConfigMap still grants access"
    if not is_false(access.get("bootstrapClusterCreatorAdminPermissions")):
        yield "bootstrapClusterCreatorAdminPermissions is not false: an invisible admin"
    if not is_false(args.props.get("bootstrapSelfManagedAddons")):
        yield "bootstrapSelfManagedAddons is not false: unmanaged add-ons nobody declares"


@resource_rule(
    "K4a",
    "launch-template-imdsv2-one-hop",
    types=t.LAUNCH_TEMPLATE,
    sources=("CKV_AWS_79", "CKV_AWS_341", "CIS 5.6"),
    severity=Severity.HIGH,
    description=(
        "Instances require IMDSv2 with a response hop limit of 1, so containers cannot read "
        "the instance role's credentials (EKS AL2023 AMIs otherwise allow 2 hops)"
    ),
)
def launch_template_imds(args: ResourceValidationArgs) -> Iterator[str]:
    options = mapping(args.props.get("metadataOptions"))
    if options.get("httpTokens") != "required":
        yield f"httpTokens is {options.get('httpTokens') or 'unset'}, not required (IMDSv1 open)"
    hops = options.get("httpPutResponseHopLimit")
    if hops is None:
        yield "httpPutResponseHopLimit is unset: the AMI's default (2 on EKS AL2023) applies"
    elif int(hops) != 1:
        yield f"httpPutResponseHopLimit is {int(hops)}: pods can reach the metadata service"


@resource_rule(
    "K4b",
    "eks-nodes-private-and-pod-security-groups",
    types=t.EKS_NODE_GROUP,
    sources=("CKV_AWS_100", "EKS security groups for pods (no t family)"),
    severity=Severity.HIGH,
    description=(
        "Managed nodes: no SSH remote access, launched from a launch template (where IMDS is "
        "set), on a family that supports security groups for pods (not t)"
    ),
)
def eks_node_group(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    if mapping(p.get("remoteAccess")):
        yield "remoteAccess opens SSH to the nodes"
    if not mapping(p.get("launchTemplate")):
        yield "no launchTemplate: the nodes take EKS's default metadata options"
    for kind in strings(p.get("instanceTypes")):
        if kind.split(".")[0].startswith("t"):
            yield f"{kind}: the t family has no trunk ENIs, so pods share the node's group"


def _configuration(value: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(str(value)) if value else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@resource_rule(
    "K6",
    "eks-vpc-cni-enforces-policies",
    types=t.EKS_ADDON,
    sources=("EKS User Guide cni-network-policy", "EKS User Guide security-groups-for-pods"),
    severity=Severity.HIGH,
    description=(
        "The vpc-cni add-on enforces NetworkPolicies and gives pods their own security groups; "
        "without either, the topology's flows are not what the network allows"
    ),
)
def vpc_cni(args: ResourceValidationArgs) -> Iterator[str]:
    if args.props.get("addonName") != "vpc-cni":
        return
    config = _configuration(args.props.get("configurationValues"))
    if not is_true(config.get("enableNetworkPolicy")):
        yield "enableNetworkPolicy is not true: NetworkPolicies are accepted and ignored"
    env = mapping(config.get("env"))
    if not is_true(env.get("ENABLE_POD_ENI")):
        yield "ENABLE_POD_ENI is not true: every pod shares its node's security groups"
