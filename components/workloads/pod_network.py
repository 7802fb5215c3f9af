"""Security groups for pods: each workload's pods get a group of their own through a
SecurityGroupPolicy, so the data tiers keep admitting only the services the topology names
(without it every pod would share the node's group, and whatever one pod may reach, all
may). The groups' rules come from the topology's flows through the same `firewall.wire`
the ECS services use.

Caveats from AWS's documentation that shape this:
- the VPC CNI must run with ENABLE_POD_ENI=true and POD_SECURITY_GROUP_ENFORCING_MODE=standard:
  in the default strict mode a pod with its own group cannot reach the Pod Identity agent
  on the node's link-local address (aws/amazon-vpc-cni-k8s#2797), and kubelet probes need
  DISABLE_TCP_EARLY_DEMUX; in standard mode traffic leaving the VPC takes the node's
  address and group, so the pods' HTTPS-out rule is a statement of intent there;
- the kubelet probes from the node, so each group admits EKS's cluster group (on every
  node) on the probe port; the API's group also admits our node group on its port, where
  kube-proxy forwards the load balancer's NodePort traffic (externalTrafficPolicy Cluster);
- CoreDNS runs with the node's groups, so each pod group may send DNS (TCP and UDP 53) to
  EKS's cluster group and that group admits DNS from each pod group (AWS's own walkthrough
  adds exactly these two rules); our node group stays open to the load balancer alone;
- only trunk-capable (Nitro, non-t) instances attach branch interfaces, and each has a
  limit (m5.large and m6i.large: 9 pods with their own group per node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import firewall
from components.workloads.pods import Manifest, labels
from infra.topology import AWS_APIS, Flow, Topology

NODES = "nodes"
"""Our security group on the nodes, as a node of the wiring (its `coldreach:node` tag)."""
CLUSTER = "eks-cluster"
"""EKS's cluster security group (EKS creates it; the cluster reports its id)."""

HTTPS_OUT = "HTTPS to AWS APIs (Secrets Manager, SES, STS)"
DNS_PORT = 53


def groups(
    names: Iterable[str], topology: Topology, vpc_id: pulumi.Input[str], parent: pulumi.Resource
) -> dict[str, firewall.SecurityGroup]:
    return {
        name: firewall.SecurityGroup(
            f"{name}-pods",
            f"Cold Reach {name} pods (security groups for pods)",
            vpc_id,
            parent,
            tags=topology.tags(name),
        )
        for name in names
    }


def wire(
    flows: Iterable[Flow],
    pods: Mapping[str, firewall.SecurityGroup],
    others: Mapping[str, firewall.SecurityGroup],
) -> None:
    firewall.wire(flows, {**others, **pods}, AWS_APIS, HTTPS_OUT)


@dataclass(frozen=True)
class Nodes:
    """The two groups every node carries (components/eks/nodes.py)."""

    security_group_id: pulumi.Input[str]
    """Ours: the load balancer's traffic to the API's NodePort arrives through it."""
    cluster_security_group_id: pulumi.Input[str]
    """EKS's cluster group: the kubelet probes from the node's primary interface, and
    CoreDNS answers behind it."""


def node_plumbing(
    name: str,
    group: firewall.SecurityGroup,
    nodes: Nodes,
    probe_port: int | None,
    load_balanced_port: int | None,
    parent: pulumi.Resource,
) -> list[Flow]:
    """DNS to CoreDNS through the cluster group both ways, the kubelet's probes in, and for
    the API the load balancer's requests that kube-proxy forwards from the NodePort. Returns
    the ingress it opened, as flows between `name`, `NODES` and `CLUSTER`."""
    opts = pulumi.ResourceOptions(parent=parent)
    for protocol in ("udp", "tcp"):
        group.allow_to_group(
            f"cluster-dns-{protocol}",
            nodes.cluster_security_group_id,
            DNS_PORT,
            "DNS to CoreDNS",
            protocol,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"cluster-in-{name}-dns-{protocol}",
            security_group_id=nodes.cluster_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol=protocol,
            from_port=DNS_PORT,
            to_port=DNS_PORT,
            description=f"DNS to CoreDNS: from {group.name}",
            opts=opts,
        )
    wired = [Flow(name, CLUSTER, DNS_PORT, "DNS to CoreDNS")]
    if probe_port is not None:
        label = "kubelet probes: from the nodes"
        group.allow_from_group("cluster", nodes.cluster_security_group_id, probe_port, label)
        wired.append(Flow(CLUSTER, name, probe_port, label))
    if load_balanced_port is not None:
        label = "HTTP from the load balancer, forwarded from the nodes' NodePort"
        group.allow_from_group("nodes", nodes.security_group_id, load_balanced_port, label)
        wired.append(Flow(NODES, name, load_balanced_port, label))
    return wired


def policy(name: str, group_id: pulumi.Input[str]) -> Manifest:
    """The SecurityGroupPolicy spec that puts `name`'s pods behind their group."""
    return {
        "podSelector": {"matchLabels": labels(name)},
        "securityGroups": {"groupIds": [group_id]},
    }
