"""Phase 3's workloads on the EKS cluster, every object derived from the topology.

Entry point (the cluster layer calls it once the cluster and its node group exist):

    build(s, topology, provider, WorkloadsArgs(cluster_name=..., node_security_group_id=...,
          cluster_security_group_id=..., api_node_port=30080, vpc_id=..., vpc_cidr=...,
          image=..., kubernetes_version="1.35",
          access=Access(shards=[...], groups={"edge": ..., "database": ..., "kafka": ...},
                        unsubscribe_secret_arn=..., public_url=..., kafka=Kafka(...),
                        mail=...))) -> Workloads

(infra/layers/cluster.py is that caller.)

For every service of the topology on `Platform.EKS`: a ServiceAccount, a Deployment
(restricted security context, resources, probes for its kind, spread over zones), a
Service (headless for gRPC, so clients balance per call; for the HTTP API a NodePort the
load balancer's instance targets forward to; none for a worker), an autoscaling/v2 HPA
and a PDB where it scales out, a pod security group with its SecurityGroupPolicy, and,
when it calls AWS, a role through a Pod Identity association with exactly its grants. The
namespace enforces Pod Security "restricted" and denies all traffic but the topology's
flows (NetworkPolicies).
Every object is a typed pulumi-kubernetes resource: the offline runtime records it like any
other, so the tests can render and validate every manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.firewall import SecurityGroup
from components.workloads import network_policies, pod_network, tracing
from components.workloads.access import Access, Kafka, Shard
from components.workloads.environment import environment
from components.workloads.identity import pod_role, statements
from components.workloads.pods import Container, Manifest, labels, pod_template, probe_for
from infra.config import Settings
from infra.topology import Flow, Kind, Platform, Service, Topology

__all__ = ["Access", "Kafka", "Shard", "Workloads", "WorkloadsArgs", "build"]

NAMESPACE = "coldreach"
COMMANDS: Mapping[str, tuple[str, ...]] = {
    "api": ("uvicorn", "openapi_server.main:app", "--host", "0.0.0.0", "--port", "8000"),
    "clients": ("coldreach-app", "serve-clients"),
    "campaigns": ("coldreach-app", "serve-campaigns"),
    "sender": ("coldreach-app", "consume"),
}
"""The phase-3 app's command per workload (the image's entry point runs them as given)."""
GRACE_SECONDS = {Kind.WORKER: 60}
"""A sender finishing an SES call gets longer than the default 30 s before SIGKILL."""


@dataclass
class WorkloadsArgs:
    cluster_name: pulumi.Input[str]
    node_security_group_id: pulumi.Input[str]
    """Ours on the nodes: the load balancer's traffic arrives from it (kube-proxy forwards
    from the NodePort to a pod)."""
    cluster_security_group_id: pulumi.Input[str]
    """EKS's cluster group, also on every node: the kubelet's probes come from it, and
    CoreDNS answers behind it."""
    api_node_port: int
    """The API Service's fixed NodePort, where the load balancer's target group sends."""
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    image: pulumi.Input[str]
    """The app image, by digest."""
    kubernetes_version: str
    """The cluster's version (major.minor): the namespace pins Pod Security to it."""
    access: Access


def _any(manifest: Manifest) -> Any:
    """Kubernetes manifests are passed as camelCase dicts, exactly as the API takes them."""
    return manifest


class Workloads(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace
    deployments: dict[str, k8s.apps.v1.Deployment]
    security_groups: dict[str, SecurityGroup]
    api_service: k8s.core.v1.Service | None
    plumbing: list[Flow]
    """What the pods' groups and EKS's cluster group admit beyond the topology's flows:
    DNS, the kubelet's probes, the load balancer's NodePort traffic."""

    def __init__(
        self,
        name: str,
        s: Settings,
        topology: Topology,
        provider: k8s.Provider,
        args: WorkloadsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("coldreach:workloads:Workloads", name, None, opts)
        self._s, self._topology, self._args = s, topology, args
        self._k8s = pulumi.ResourceOptions(parent=self, provider=provider)
        services = topology.on(Platform.EKS)
        version = args.kubernetes_version
        self.namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata=_any(
                {
                    "name": NAMESPACE,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": f"v{version}",
                        "pod-security.kubernetes.io/audit": "restricted",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                }
            ),
            opts=self._k8s,
        )
        self._in_namespace = pulumi.ResourceOptions.merge(
            self._k8s, pulumi.ResourceOptions(depends_on=[self.namespace])
        )

        names = [svc.name for svc in services]
        flows = topology.flows_on(Platform.EKS)
        self.security_groups = pod_network.groups(names, topology, args.vpc_id, self)
        pod_network.wire(flows, self.security_groups, args.access.groups)

        self.deployments = {}
        self.api_service = None
        self.plumbing = []
        self._depends: list[pulumi.Resource] = []
        with_role = [svc.name for svc in services if self._workload(svc)]

        specs = network_policies.policies(flows, names, args.vpc_cidr)
        specs |= network_policies.plumbing(with_role)
        for policy, spec in specs.items():
            self._object(k8s.networking.v1.NetworkPolicy, f"netpol-{policy}", policy, spec)

        self.register_outputs(
            {
                "namespace": NAMESPACE,
                "deployments": sorted(self.deployments),
                "security_groups": {n: g.id for n, g in self.security_groups.items()},
            }
        )

    def _meta(self, name: str) -> Any:
        return {"name": name, "namespace": NAMESPACE, "labels": labels(name)}

    def _object(self, kind: type, resource: str, name: str, spec: Manifest) -> Any:
        return kind(resource, metadata=self._meta(name), spec=_any(spec), opts=self._in_namespace)

    def _workload(self, svc: Service) -> bool:
        """Declares one workload; True when it got an AWS role."""
        s, topology, args = self._s, self._topology, self._args
        name, pod = svc.name, s.pods[svc.name]
        access = args.access
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=self._meta(name),
            automount_service_account_token=False,
            opts=self._in_namespace,
        )
        # EKS injects a pod's credentials (Pod Identity) and its own security group (the
        # SecurityGroupPolicy) only when the pod is admitted: both must exist before the
        # Deployment creates its first pod, or that pod runs without them until restarted.
        self._depends = []
        grants = statements(svc, topology, access) if svc.calls_aws else []
        if grants:
            self._depends.append(pod_role(name, grants, args.cluster_name, NAMESPACE, name, self))
        group = self.security_groups[name]
        self._depends.append(
            k8s.apiextensions.CustomResource(
                f"{name}-sgp",
                api_version="vpcresources.k8s.aws/v1beta1",
                kind="SecurityGroupPolicy",
                metadata=self._meta(name),
                spec=pod_network.policy(name, group.id),
                opts=self._in_namespace,
            )
        )

        volumes: list[Manifest] = []
        strategy: Manifest = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}
        if name == "tracing":
            probe = tracing.probe()
            container = Container(
                name,
                s.workloads.tracing_image,
                pod,
                args=("--config", f"{tracing.CONFIG_DIR}/config.yaml"),
                ports={"otlp-grpc": tracing.OTLP_GRPC, "query-ui": tracing.QUERY_UI},
                probe=probe,
                mounts=self._tracing_storage(volumes),
            )
            if tracing.persistent(s.workloads):
                strategy = {"type": "Recreate"}
        else:
            probe = probe_for(svc)
            ports = {_port_name(svc): svc.port} if svc.port is not None else {}
            container = Container(
                name,
                args.image,
                pod,
                args=COMMANDS[name],
                env=environment(s, svc, topology, access, NAMESPACE),
                ports=ports,
                probe=probe,
            )
        self.plumbing += pod_network.node_plumbing(
            name,
            group,
            pod_network.Nodes(args.node_security_group_id, args.cluster_security_group_id),
            probe.port if probe else None,
            svc.port if svc.load_balanced else None,
            self,
        )

        template = pod_template(
            labels(name), name, container, volumes, GRACE_SECONDS.get(svc.kind, 30)
        )
        scales = pod.cpu_target is not None
        spec: Manifest = {
            "selector": {"matchLabels": labels(name)},
            "strategy": strategy,
            "template": template,
        }
        if not scales:
            spec["replicas"] = pod.replicas
        self.deployments[name] = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._meta(name),
            spec=_any(spec),
            opts=pulumi.ResourceOptions.merge(
                self._in_namespace, pulumi.ResourceOptions(depends_on=self._depends)
            ),
        )

        if svc.port is not None:
            self._service(svc)
        if scales:
            # The HPA owns the replica count: the Deployment leaves `replicas` unset, or
            # every `pulumi up` would reset what the HPA scaled to.
            self._object(
                k8s.autoscaling.v2.HorizontalPodAutoscaler,
                f"{name}-hpa",
                name,
                {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": pod.replicas,
                    "maxReplicas": pod.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": pod.cpu_target,
                                },
                            },
                        }
                    ],
                },
            )
        # One pod at a time may be evicted: a node drain proceeds, and with two or more
        # replicas one keeps serving. Never 0, which would block managed node group updates.
        self._object(
            k8s.policy.v1.PodDisruptionBudget,
            f"{name}-pdb",
            name,
            {"maxUnavailable": 1, "selector": {"matchLabels": labels(name)}},
        )
        return bool(grants)

    def _service(self, svc: Service) -> None:
        assert svc.port is not None
        port: Manifest = {
            "name": _port_name(svc),
            "port": svc.port,
            "targetPort": svc.port,
            "protocol": "TCP",
        }
        spec: Manifest = {"selector": labels(svc.name), "ports": [port]}
        if svc.kind is Kind.GRPC:
            # Headless: DNS answers with every ready pod, and gRPC's round_robin spreads calls.
            spec["clusterIP"] = "None"
            port["appProtocol"] = "kubernetes.io/h2c"
        elif svc.load_balanced:
            # The load balancer's instance targets forward to this port on every node (ADR
            # 0004). Cluster (the default) spreads its traffic over every pod; Local is
            # unsupported for pods with their own security group in strict mode.
            spec["type"] = "NodePort"
            spec["externalTrafficPolicy"] = "Cluster"
            port["nodePort"] = self._args.api_node_port
        else:
            spec["type"] = "ClusterIP"
        service = self._object(k8s.core.v1.Service, f"{svc.name}-service", svc.name, spec)
        if svc.load_balanced:
            self.api_service = service

    def _tracing_storage(self, volumes: list[Manifest]) -> list[Manifest]:
        """The ConfigMap with Jaeger's configuration and, for Badger, its volume."""
        w = self._s.workloads
        config = k8s.core.v1.ConfigMap(
            "tracing-config",
            metadata=self._meta("tracing-config"),
            data={"config.yaml": tracing.config(w)},
            opts=self._in_namespace,
        )
        volumes.append({"name": "config", "configMap": {"name": "tracing-config"}})
        mounts: list[Manifest] = [
            {"name": "config", "mountPath": tracing.CONFIG_DIR, "readOnly": True}
        ]
        if tracing.persistent(w):
            k8s.storage.v1.StorageClass(
                "tracing-storage-class",
                metadata=_any({"name": tracing.STORAGE_CLASS}),
                provisioner=tracing.PROVISIONER,
                parameters=tracing.VOLUME_PARAMETERS,
                # Created in the AZ the pod is scheduled in; kept when the claim is deleted.
                volume_binding_mode="WaitForFirstConsumer",
                reclaim_policy="Retain",
                allow_volume_expansion=True,
                opts=self._k8s,
            )
            self._object(
                k8s.core.v1.PersistentVolumeClaim, "tracing-data", "tracing-data", tracing.claim(w)
            )
            volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": "tracing-data"}})
            mounts.append({"name": "data", "mountPath": tracing.DATA_DIR})
        self._depends.append(config)
        return mounts


def _port_name(svc: Service) -> str:
    return "grpc" if svc.kind is Kind.GRPC else "http"


def build(
    s: Settings, topology: Topology, provider: k8s.Provider, args: WorkloadsArgs
) -> Workloads:
    return Workloads("workloads", s, topology, provider, args)
