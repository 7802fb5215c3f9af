"""The tracing backend: Jaeger v2 (an OpenTelemetry Collector distribution) receiving OTLP
on 4317 and keeping spans either in memory or in Badger on an EBS volume.

Storage decision: Badger on a gp3 PersistentVolume on production stacks, memory elsewhere.
Badger is an embedded single-writer store: one pod, the Recreate strategy (the volume is
ReadWriteOnce and the old pod must release it first), spans kept `tracingRetentionHours`.
It survives pod restarts and node replacement within the volume's AZ; it does not survive
losing that AZ (EBS is zonal), and it does not scale out. A trace store that must be highly
available belongs in OpenSearch or a managed backend (the exporter endpoint is the only
thing the apps know). The volume needs the EBS CSI driver add-on on the cluster.
Memory keeps the newest `MAX_TRACES` traces and loses them when the pod restarts.
"""

from __future__ import annotations

import json

from components.workloads.pods import Manifest, Probe, grpc_probe
from infra.config.settings import WorkloadSettings

OTLP_GRPC = 4317
QUERY_UI = 16686
HEALTH_GRPC = 13132
"""The healthcheckv2 extension's gRPC health service: the kubelet probes it natively."""
CONFIG_DIR = "/etc/jaeger"
DATA_DIR = "/badger"
MAX_TRACES = 50_000
STORAGE_CLASS = "gp3-encrypted"
PROVISIONER = "ebs.csi.aws.com"
VOLUME_PARAMETERS = {"type": "gp3", "encrypted": "true"}


def persistent(w: WorkloadSettings) -> bool:
    return w.tracing_storage == "badger"


def backend(w: WorkloadSettings) -> Manifest:
    if not persistent(w):
        return {"memory": {"max_traces": MAX_TRACES}}
    return {
        "badger": {
            "directories": {"keys": f"{DATA_DIR}/keys", "values": f"{DATA_DIR}/values"},
            "ephemeral": False,
            "ttl": {"spans": f"{w.tracing_retention_hours}h"},
        }
    }


def config(w: WorkloadSettings) -> str:
    """Jaeger v2's configuration (the collector's YAML; JSON is valid YAML)."""
    document = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
        },
        "extensions": {
            "healthcheckv2": {
                "use_v2": True,
                "grpc": {"endpoint": f"0.0.0.0:{HEALTH_GRPC}"},
            },
            "jaeger_storage": {"backends": {"traces": backend(w)}},
            # The UI is reached with `kubectl port-forward`, never through the load balancer.
            "jaeger_query": {
                "storage": {"traces": "traces"},
                "http": {"endpoint": f"0.0.0.0:{QUERY_UI}"},
            },
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC}"}}}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "traces"}},
    }
    return json.dumps(document, indent=2, sort_keys=True)


def probe() -> Probe:
    return grpc_probe(HEALTH_GRPC)


def claim(w: WorkloadSettings) -> Manifest:
    return {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": STORAGE_CLASS,
        "resources": {"requests": {"storage": f"{w.tracing_storage_gb}Gi"}},
    }
