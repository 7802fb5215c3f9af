"""The cluster layer (phase 3): the EKS control plane, its add-ons, the node group, the
Kubernetes provider the workloads are declared through, and the load balancer's way in.

The load balancer reaches the API's pods through the nodes: its cluster target group
(edge layer) holds the node group's instances on the API Service's NodePort, and the
nodes' own security group admits the load balancer's on that port only (ADR 0004).

The workloads (components/workloads) are declared here once the cluster exists, through
its provider: the API Service on `API_NODE_PORT` (`type: NodePort`,
`externalTrafficPolicy: Cluster`), each pod security group admitting the nodes' group on
the API's port (kube-proxy forwards from the node) and EKS's cluster group on the probe
port (the kubelet), and the data tiers as the data layer built them: the shards, MSK's
cluster, brokers and topic ARNs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import eks, firewall, workloads
from components.eks import addons
from components.network import Network
from components.registry import IMAGE_ARCHITECTURE
from components.workloads import pod_network, tracing
from infra.config import Settings
from infra.layers.compute import APP_DB_USER, Compute
from infra.layers.data import Data
from infra.layers.edge import API_NODE_PORT, CLUSTER_TARGETS, Edge
from infra.topology import EDGE, TIERS, Flow, Topology

NODES = pod_network.NODES
"""The nodes' security group in rule names and tags."""


@dataclass
class ClusterLayer:
    cluster: eks.Cluster
    nodes: eks.NodeGroup
    provider: k8s.Provider
    addons: list[aws.eks.Addon]
    workloads: workloads.Workloads
    plumbing: list[Flow]
    """Ingress the cluster needs beyond the topology's flows (the load balancer to the
    nodes, DNS, probes): part of the `topology` output, so checks of the graph know it."""

    @property
    def node_security_group(self) -> firewall.SecurityGroup:
        return self.nodes.security_group

    @property
    def cluster_security_group_id(self) -> pulumi.Output[str]:
        return self.cluster.security_group_id


def admin_roles(s: Settings) -> list[pulumi.Input[str]]:
    """The configured admin roles, else the IAM role behind the credentials running the
    deploy (an assumed role's session resolves to the role itself)."""
    if s.cluster.admins:
        return list(s.cluster.admins)
    # The access entry is keyed by the principal: a run under another role (a laptop, the
    # read-only preview role) would replace the deploy role's entry and lock CI out.
    pulumi.log.warn(
        "cold-reach:eksAdminRoleArns is not set: the role running this deploy becomes the "
        "cluster's only admin. Set it to the CI deploy role and a break-glass role before "
        "anyone runs `pulumi up` under another role (docs/cluster.md)."
    )
    caller = aws.get_caller_identity_output()
    context = aws.iam.get_session_context_output(arn=caller.arn)
    return [context.issuer_arn]


def access(
    s: Settings, topology: Topology, data: Data, edge: Edge, apps: Compute
) -> workloads.Access:
    """What the workloads reach outside the cluster, as the data, edge and compute layers
    built it. Where the ECS services sign in to PostgreSQL with IAM tokens, so do the pods,
    as the same app role (`dbIamAuth`, docs/database-access.md)."""
    iam_user = APP_DB_USER if s.database.services_on_iam else None
    port = TIERS["database"].port
    kafka = None
    if data.kafka is not None:
        kafka = workloads.Kafka(
            data.kafka.cluster.arn,
            data.kafka.bootstrap_brokers,
            {name: topic.arn for name, topic in data.kafka.topics.items()},
        )
    groups = {EDGE: edge.load_balancer.security_group} | data.groups(topology)
    return workloads.Access(
        shards=[
            workloads.Shard(
                shard.address,
                port,
                shard.name,
                shard.secret_arn,
                shard.connect_arn(iam_user) if iam_user else None,
            )
            for shard in data.shards or [data.database]
        ],
        groups=groups,
        unsubscribe_secret_arn=apps.unsubscribe_key.arn,
        public_url=edge.public_url,
        kafka=kafka,
        mail=edge.mail,
        iam_db_user=iam_user,
    )


def build(
    s: Settings, topology: Topology, net: Network, data: Data, edge: Edge, apps: Compute
) -> ClusterLayer:
    """The cluster and the topology's cluster services on it (components/workloads)."""
    c = s.cluster
    if eks.architecture(c.node_instance_type) != IMAGE_ARCHITECTURE:
        raise pulumi.RunError(
            f"cold-reach:eksNodeInstanceType = {c.node_instance_type} runs "
            f"{eks.architecture(c.node_instance_type)}, but the app image is built for "
            f"{IMAGE_ARCHITECTURE}: pick a type of the image's architecture"
        )
    cluster = eks.Cluster(
        "eks",
        eks.ClusterArgs(
            version=c.version,
            support_type=c.support_type,
            subnet_ids=net.private_subnet_ids,
            public_access_cidrs=c.public_cidrs,
            admin_role_arns=admin_roles(s),
            log_retention_days=s.log_retention_days,
            protect=s.protect,
        ),
    )
    before = addons.install("eks-addon", cluster.name, c.version, addons.BEFORE_NODES, cluster)
    nodes = eks.NodeGroup(
        "eks-nodes",
        eks.NodeGroupArgs(
            cluster_name=cluster.name,
            cluster_security_group_id=cluster.security_group_id,
            version=cluster.cluster.version,
            vpc_id=net.vpc.id,
            subnet_ids=net.private_subnet_ids,
            instance_type=c.node_instance_type,
            count=c.node_count,
            max_count=c.node_max_count,
            disk_gb=c.node_disk_gb,
            security_group_tags={"coldreach:node": NODES},
            # Nodes pull images through the NAT and join only once the CNI is there.
            depends_on=[*before, *net.nat_routes],
        ),
    )
    after = addons.install(
        "eks-addon",
        cluster.name,
        c.version,
        addons.AFTER_NODES,
        cluster,
        depends_on=[nodes.node_group],
    )
    if tracing.persistent(s.workloads):
        # Jaeger's Badger volume is a claim only the EBS CSI driver fills.
        after.append(
            addons.ebs_csi(
                "eks-addon-ebs-csi", cluster.name, c.version, cluster, [nodes.node_group, *before]
            )
        )

    # The load balancer's cluster target group holds the nodes; it may reach them on the
    # API's NodePort and nothing else.
    lb = edge.load_balancer
    plumbing: list[Flow] = []
    if CLUSTER_TARGETS in lb.target_groups:
        aws.autoscaling.Attachment(
            "eks-nodes-api-targets",
            autoscaling_group_name=nodes.autoscaling_group_name,
            lb_target_group_arn=lb.target_groups[CLUSTER_TARGETS].arn,
            opts=pulumi.ResourceOptions(parent=nodes),
        )
        firewall.connect(
            lb.security_group,
            nodes.security_group,
            API_NODE_PORT,
            "HTTP to the API's NodePort",
        )
        plumbing.append(Flow(EDGE, NODES, API_NODE_PORT, "HTTP to the API's NodePort"))

    provider = eks.provider(
        "eks-k8s",
        cluster.name,
        cluster.cluster.endpoint,
        cluster.cluster.certificate_authority.data,  # type: ignore[arg-type]
        s.region,
        opts=pulumi.ResourceOptions(parent=cluster, depends_on=[*cluster.admins, *after]),
    )
    services = workloads.build(
        s,
        topology,
        provider,
        workloads.WorkloadsArgs(
            cluster_name=cluster.name,
            node_security_group_id=nodes.security_group.id,
            cluster_security_group_id=cluster.security_group_id,
            api_node_port=API_NODE_PORT,
            vpc_id=net.vpc.id,
            vpc_cidr=s.network.vpc_cidr,
            image=apps.image.ref,
            kubernetes_version=c.version,
            access=access(s, topology, data, edge, apps),
        ),
    )
    return ClusterLayer(
        cluster, nodes, provider, [*before, *after], services, [*plumbing, *services.plumbing]
    )
