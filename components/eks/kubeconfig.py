"""The Kubernetes provider the workloads are declared through.

Its kubeconfig authenticates with an exec plugin that runs `aws eks get-token`
each time the provider needs a token, with the credentials of whoever runs
`pulumi up` (the deploy role, which has an admin access entry). A token baked
into the kubeconfig (`aws.eks.get_cluster_auth`, `aws_eks_cluster_auth`) is a
presigned STS URL valid for 15 minutes: long deploys then fail with
`Unauthorized` half-way (terraform-provider-kubernetes#1131). The deploying
machine needs the AWS CLI and must reach the cluster endpoint.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

EXEC_API = "client.authentication.k8s.io/v1beta1"


def render(name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig (JSON is valid YAML) for one cluster, with the exec credential plugin."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": endpoint,
                    "certificate-authority-data": certificate_authority,
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": EXEC_API,
                        "command": "aws",
                        "args": [
                            "eks",
                            "get-token",
                            "--cluster-name",
                            name,
                            "--region",
                            region,
                            "--output",
                            "json",
                        ],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }
    return json.dumps(config, indent=2)


def provider(
    name: str,
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    certificate_authority: pulumi.Input[str],
    region: str,
    opts: pulumi.ResourceOptions | None = None,
) -> k8s.Provider:
    kubeconfig = pulumi.Output.all(cluster_name, endpoint, certificate_authority).apply(
        lambda a: render(str(a[0]), str(a[1]), str(a[2]), region)
    )
    return k8s.Provider(name, kubeconfig=kubeconfig, opts=opts)
