"""NetworkPolicies from the topology: the namespace denies everything, then each workload
may take and make exactly the connections its flows declare.

A flow between two workloads becomes a pod selector on both ends (ingress at the target,
egress at the source). Peers outside the cluster have no pod labels, so they are address
blocks on the flow's port: the VPC for the load balancer and the data tiers (their
security groups then admit only the pods' own groups, see `pod_network`), anywhere for
HTTPS to AWS's APIs. Besides the flows every pod may resolve names (kube-dns) and a pod
with an AWS role may fetch its credentials from the Pod Identity agent, which answers on
a link-local address of the node that no flow names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from components.workloads.pods import NAME_LABEL, Manifest, labels
from infra.topology import AWS_APIS, EDGE, TIERS, Flow

ANYWHERE = "0.0.0.0/0"
POD_IDENTITY_AGENT = "169.254.170.23/32"
"""EKS Pod Identity's agent (a hostNetwork DaemonSet) on every node, port 80."""
DEFAULT_DENY = "default-deny"
DNS = "allow-dns"
CREDENTIALS = "allow-pod-identity"
PLUMBING = (DNS, CREDENTIALS)
"""The policies for what pods need from the cluster itself, beyond the topology's flows."""
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def _port(port: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"port": port, "protocol": protocol}


def _peer(node: str, workloads: set[str], vpc_cidr: str) -> Manifest:
    if node in workloads:
        return {"podSelector": {"matchLabels": labels(node)}}
    if node == AWS_APIS:
        return {"ipBlock": {"cidr": ANYWHERE}}
    if node == EDGE or node in TIERS:
        return {"ipBlock": {"cidr": vpc_cidr}}
    raise ValueError(f"no NetworkPolicy peer for {node!r}")


def policies(flows: Iterable[Flow], workloads: Iterable[str], vpc_cidr: str) -> dict[str, Manifest]:
    """Policy name -> NetworkPolicy spec, for the flows with an end on a workload."""
    names = set(workloads)
    ingress: dict[str, list[Manifest]] = {n: [] for n in sorted(names)}
    egress: dict[str, list[Manifest]] = {n: [] for n in sorted(names)}
    for flow in flows:
        if flow.target in names:
            rule = {"from": [_peer(flow.source, names, vpc_cidr)], "ports": [_port(flow.port)]}
            ingress[flow.target].append(rule)
        if flow.source in names:
            rule = {"to": [_peer(flow.target, names, vpc_cidr)], "ports": [_port(flow.port)]}
            egress[flow.source].append(rule)
    found: dict[str, Manifest] = {
        DEFAULT_DENY: {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    for name in sorted(names):
        found[name] = {
            "podSelector": {"matchLabels": labels(name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress[name],
            "egress": egress[name],
        }
    return found


def plumbing(with_aws_role: Iterable[str]) -> dict[str, Manifest]:
    """DNS for every pod; the Pod Identity agent only for the pods that have an AWS role."""
    found: dict[str, Manifest] = {
        DNS: {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [KUBE_DNS], "ports": [_port(53, "UDP"), _port(53, "TCP")]}],
        }
    }
    roles = sorted(with_aws_role)
    if roles:
        selector = {"key": NAME_LABEL, "operator": "In", "values": roles}
        found[CREDENTIALS] = {
            "podSelector": {"matchExpressions": [selector]},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [_port(80)]}],
        }
    return found
