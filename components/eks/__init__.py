"""EKS as our own components: the control plane (cluster.py), its add-ons (addons.py), the
managed node group (nodes.py) and the Kubernetes provider that reaches it (kubeconfig.py)."""

from components.eks.cluster import Cluster, ClusterArgs
from components.eks.kubeconfig import provider
from components.eks.nodes import NodeGroup, NodeGroupArgs, architecture

__all__ = ["Cluster", "ClusterArgs", "NodeGroup", "NodeGroupArgs", "architecture", "provider"]
