"""The Kubernetes objects a stack declares, as the manifests the API server would receive,
and their validation against the cluster version's OpenAPI schema.

The offline runtime records each typed pulumi-kubernetes resource with its inputs, which
are the manifest itself (camelCase, `apiVersion` and `kind` included); whole floats from
the wire are already ints again. Nothing here is deployed: these objects are "rendered, not
deployed" in the local demo. Validation needs the dev group (kubernetes-validate).
"""

from __future__ import annotations

from typing import Any

from coldreach.runtime import Deployment, Resource
from coldreach.runtime.echo import digest

PREFIX = "kubernetes:"

_SELECTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
CUSTOM: dict[tuple[str, str], dict[str, Any]] = {
    # The openAPIV3Schema of the VPC resource controller's CRD, closed to unknown fields
    # (the API server would prune them silently, which hides a typo):
    # github.com/aws/amazon-vpc-resource-controller-k8s/blob/master/config/crd/bases/vpcresources.k8s.aws_securitygrouppolicies.yaml  # noqa: E501
    ("vpcresources.k8s.aws/v1beta1", "SecurityGroupPolicy"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "podSelector": _SELECTOR,
                    "serviceAccountSelector": _SELECTOR,
                    "securityGroups": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "groupIds": {
                                "type": "array",
                                "items": {"type": "string"},
                                "minItems": 1,
                                "maxItems": 16,
                            }
                        },
                    },
                },
            },
        },
    }
}


def is_kubernetes(r: Resource) -> bool:
    return r.custom and r.type.startswith(PREFIX)


def manifest(r: Resource) -> dict[str, Any]:
    """The object as sent to the API server: the resource's inputs, secrets revealed; an
    object left unnamed gets the name the provider would give it (autonaming: the logical
    name and a random suffix, here derived from the URN)."""
    found = {k: r.get(k) for k in r.inputs}
    metadata = dict(found.get("metadata") or {})
    if not metadata.get("name"):
        metadata["name"] = f"{r.name}-{digest(r.urn, 8)}"
        found["metadata"] = metadata
    return found


def manifests(d: Deployment) -> list[dict[str, Any]]:
    return [manifest(r) for r in d if is_kubernetes(r)]


def problems(obj: dict[str, Any], version: str) -> list[str]:
    """Why the API server of `version` (major.minor) would refuse `obj`; empty when none.

    Built-in kinds use kubernetes-validate's strict schemas (unknown fields refused), custom
    kinds the CRD schemas above; a kind with no schema at all is a problem too.
    """
    # Imported here: the validators come with the dev tools, not with the program.
    import jsonschema
    import kubernetes_validate

    custom = CUSTOM.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if custom is not None:
        validator = jsonschema.Draft7Validator(custom)
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(p) for p in err.path) or "<root>"
        return [f"{where}: {err.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes {version}"]
    return []
