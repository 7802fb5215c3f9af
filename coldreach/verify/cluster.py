"""The EKS cluster as deployed: its API endpoint, secrets encryption, control-plane logs,
and the metadata options and instance family its nodes actually start with."""

from __future__ import annotations

import ipaddress
from typing import Any

from coldreach.verify.aws import Aws
from coldreach.verify.discovery import State
from coldreach.verify.findings import FAIL, Finding, verdict
from policies.cluster import LOG_TYPES, WIDEST_PUBLIC_PREFIX


def _endpoint(name: str, vpc: dict[str, Any]) -> Finding:
    if not vpc.get("endpointPrivateAccess"):
        return Finding("eks.endpoint", name, FAIL, "private endpoint OFF")
    if not vpc.get("endpointPublicAccess"):
        return Finding("eks.endpoint", name, "pass", "private only")
    cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]  # AWS's default when none is set
    wide = [
        c for c in cidrs if ipaddress.ip_network(c, strict=False).prefixlen < WIDEST_PUBLIC_PREFIX
    ]
    detail = f"private, and public from {', '.join(cidrs)}"
    return verdict("eks.endpoint", name, not wide, detail, f"public endpoint open to {wide}")


def _nodes(aws: Aws, cluster: str) -> list[Finding]:
    eks = aws("eks")
    out: list[Finding] = []
    for group_name in eks.list_nodegroups(clusterName=cluster)["nodegroups"]:
        group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group_name)["nodegroup"]
        kinds = group.get("instanceTypes") or []
        t_family = [k for k in kinds if k.split(".")[0].startswith("t")]
        out.append(
            verdict(
                "eks.nodes_family",
                group_name,
                not t_family,
                f"{', '.join(kinds)}: trunk ENIs for security groups for pods",
                f"{', '.join(t_family)}: no trunk ENIs, pods share the node's groups",
            )
        )
        template = group.get("launchTemplate")
        if not template:
            out.append(Finding("eks.nodes_imds", group_name, FAIL, "no launch template"))
            continue
        versions = aws("ec2").describe_launch_template_versions(
            LaunchTemplateId=template["id"], Versions=[str(template["version"])]
        )["LaunchTemplateVersions"]
        options = versions[0]["LaunchTemplateData"].get("MetadataOptions", {})
        tokens, hops = options.get("HttpTokens"), options.get("HttpPutResponseHopLimit")
        out.append(
            verdict(
                "eks.nodes_imds",
                group_name,
                tokens == "required" and hops == 1,
                f"IMDSv2 {tokens}, hop limit {hops}",
            )
        )
    return out


def check_cluster(state: State, aws: Aws) -> list[Finding]:
    name = state.outputs.get("eks_cluster_name")
    if not name:
        return []
    cluster = aws("eks").describe_cluster(name=name)["cluster"]
    out = [_endpoint(name, cluster.get("resourcesVpcConfig") or {})]
    sealed = [
        c
        for c in cluster.get("encryptionConfig") or []
        if "secrets" in c.get("resources", []) and (c.get("provider") or {}).get("keyArn")
    ]
    out.append(
        verdict(
            "eks.secrets_encrypted",
            name,
            bool(sealed),
            "secrets sealed with a KMS key",
            "secrets NOT envelope-encrypted",
        )
    )
    enabled = {
        t
        for entry in (cluster.get("logging") or {}).get("clusterLogging") or []
        if entry.get("enabled")
        for t in entry.get("types") or []
    }
    missing = [t for t in LOG_TYPES if t not in enabled]
    out.append(
        verdict(
            "eks.logging",
            name,
            not missing,
            "every control-plane log type",
            f"logs OFF: {', '.join(missing)}",
        )
    )
    return out + _nodes(aws, str(name))
