"""The Pod template every workload shares: restricted security, sized resources, probes that
fit its kind, and replicas spread across zones.

Pod Security "restricted" asks for runAsNonRoot, no privilege escalation, every capability
dropped and the RuntimeDefault seccomp profile; the read-only root filesystem (with a
writable emptyDir at /tmp) goes beyond it, as the ECS task definitions already do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.config.settings import PodSettings
from infra.topology import Kind, Service

APP_USER = 10001
"""The image's non-root user and group (app/Dockerfile), also Jaeger's."""
HEALTH_PATH = "/healthz"
PART_OF = "cold-reach"
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
TMP_SIZE = "64Mi"

Manifest = dict[str, Any]


NAME_LABEL = "app.kubernetes.io/name"


def labels(service: str) -> dict[str, str]:
    """The labels that select one workload's pods (Service, PDB, NetworkPolicy, SGP)."""
    return {NAME_LABEL: service, "app.kubernetes.io/part-of": PART_OF}


@dataclass(frozen=True)
class Probe:
    """How the kubelet checks a container, and the port it connects to (None: exec or none)."""

    spec: Manifest
    port: int | None


def grpc_probe(port: int) -> Probe:
    """The kubelet's native gRPC probe (GA in 1.27): grpc.health.v1.Health/Check on `port`,
    for the server as a whole (an empty service name)."""
    return Probe({"grpc": {"port": port}}, port)


def http_probe(port: int, path: str = HEALTH_PATH) -> Probe:
    return Probe({"httpGet": {"path": path, "port": port}}, port)


WORKER_HEALTH = ("python", "-m", "openapi_server.healthcheck", "--worker")
"""Exits 0 while the worker's heartbeat file (`$DATA_DIR/worker-heartbeat`) is fresh: the
app's consumer touches it each pass of its poll loop, partitions or not."""
WORKER_DATA_DIR = "/tmp"
"""Where a worker writes its heartbeat: the pod's only writable path (an emptyDir)."""


def exec_probe(command: Sequence[str]) -> Probe:
    return Probe({"exec": {"command": list(command)}}, None)


def probe_for(service: Service) -> Probe | None:
    """A listener is probed in its own protocol; a worker by its heartbeat file, so a
    consumer whose poll loop hangs is restarted (the broker's session timeout alone would
    only move its partitions away)."""
    if service.port is None:
        return exec_probe(WORKER_HEALTH) if service.kind is Kind.WORKER else None
    if service.kind is Kind.GRPC:
        return grpc_probe(service.port)
    return http_probe(service.port)


def resources(pod: PodSettings) -> Manifest:
    """Requests for both, a memory limit; no CPU limit, so a busy pod is not throttled while
    the node has spare CPU (the HPA scales on the request instead)."""
    memory = f"{pod.memory}Mi"
    return {
        "requests": {"cpu": f"{pod.cpu}m", "memory": memory},
        "limits": {"memory": memory},
    }


def container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": APP_USER,
        "runAsGroup": APP_USER,
        "fsGroup": APP_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def spread(selector: Mapping[str, str]) -> list[Manifest]:
    """Replicas across both AZs first, then across nodes; ScheduleAnyway, because with two
    zones and few nodes a hard constraint would leave pods pending during a node update."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for key in (ZONE, HOSTNAME)
    ]


def pull_policy(image: pulumi.Input[str]) -> pulumi.Input[str]:
    """A digest never changes, so a cached copy is the image; a tag may be pushed again, so
    the kubelet asks the registry every time (CKV_K8S_15)."""
    return pulumi.Output.from_input(image).apply(
        lambda ref: "IfNotPresent" if "@sha256:" in ref else "Always"
    )


@dataclass
class Container:
    name: str
    image: pulumi.Input[str]
    pod: PodSettings
    args: Sequence[str] = ()
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    """Port name -> container port."""
    probe: Probe | None = None
    mounts: Sequence[Manifest] = ()

    def manifest(self) -> Manifest:
        found: Manifest = {
            "name": self.name,
            "image": self.image,
            "imagePullPolicy": pull_policy(self.image),
            "resources": resources(self.pod),
            "securityContext": container_security(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *self.mounts],
        }
        if self.args:
            found["args"] = list(self.args)
        if self.env:
            found["env"] = [{"name": k, "value": v} for k, v in sorted(self.env.items())]
        if self.ports:
            found["ports"] = [
                {"name": name, "containerPort": port, "protocol": "TCP"}
                for name, port in self.ports.items()
            ]
        if self.probe is not None:
            found["readinessProbe"] = {**self.probe.spec, "periodSeconds": 10}
            found["livenessProbe"] = {
                **self.probe.spec,
                "periodSeconds": 20,
                "failureThreshold": 3,
            }
            # Slow starts (migrations, a cold image) get a minute before liveness counts.
            found["startupProbe"] = {**self.probe.spec, "periodSeconds": 5, "failureThreshold": 12}
        return found


def pod_template(
    selector: Mapping[str, str],
    service_account: str,
    container: Container,
    volumes: Sequence[Manifest] = (),
    grace_seconds: int = 30,
) -> Manifest:
    return {
        "metadata": {"labels": dict(selector)},
        "spec": {
            "serviceAccountName": service_account,
            # Pod Identity mounts its own projected token; the pod never needs the API's.
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": grace_seconds,
            "securityContext": pod_security(),
            "topologySpreadConstraints": spread(selector),
            "containers": [container.manifest()],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}, *volumes],
        },
    }
