"""Pod-spec rules for the cluster's workloads: Pod Security "restricted", no host access, a
read-only root, sized resources, probes, immutable images; and namespaces that enforce the
restricted profile. They read the manifests as the engine sees them (camelCase, exactly
what the API server receives), for every kind that carries a Pod spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies import tokens as t
from policies.model import is_true, items, mapping, of_type, resource_rule, stack_rule

ENFORCE = "pod-security.kubernetes.io/enforce"
# Pod Security "restricted": the only volume types a pod may use.
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_OK = ("RuntimeDefault", "Localhost")
DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")
VERSION_TAG = re.compile(r":v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Pod spec a resource carries: its own (a Pod), a template's, or a CronJob's job's."""
    spec = mapping(props.get("spec"))
    if resource_type == t.K8S_POD:
        return spec
    if resource_type == t.K8S_CRON_JOB:
        spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    return mapping(mapping(spec.get("template")).get("spec"))


def all_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = [*items(spec.get("initContainers")), *items(spec.get("containers"))]
    return [c for c in found if isinstance(c, Mapping)]


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name") or "?")


def _pods(args: ResourceValidationArgs) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    spec = pod_spec(args.resource_type, args.props)
    return spec, all_containers(spec)


def _effective(pod: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A container's securityContext value, falling back to the pod's."""
    value = mapping(container.get("securityContext")).get(key)
    return value if value is not None else mapping(pod.get("securityContext")).get(key)


@resource_rule(
    "W1",
    "k8s-pod-security-restricted",
    types=t.POD_CONTROLLERS,
    sources=("PSS restricted", "CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_31",
             "CKV_K8S_37", "CKV_K8S_40"),
    severity=Severity.HIGH,
    description="Pods meet Pod Security \"restricted\": non-root, no privilege escalation, "
    "every capability dropped, the RuntimeDefault seccomp profile, restricted volume types",
)  # fmt: skip
def pod_security_restricted(args: ResourceValidationArgs) -> Iterator[str]:
    pod, containers = _pods(args)
    if not containers:
        yield "no containers found in the Pod spec"
    for c in containers:
        name = _name(c)
        security = mapping(c.get("securityContext"))
        if not is_true(_effective(pod, c, "runAsNonRoot")):
            yield f"container {name}: runAsNonRoot is not true"
        if _effective(pod, c, "runAsUser") == 0:
            yield f"container {name}: runAsUser is 0 (root)"
        if security.get("allowPrivilegeEscalation") is not False:
            yield f"container {name}: allowPrivilegeEscalation is not false"
        if is_true(security.get("privileged")):
            yield f"container {name}: privileged"
        capabilities = mapping(security.get("capabilities"))
        if "ALL" not in items(capabilities.get("drop")):
            yield f"container {name}: capabilities do not drop ALL"
        added = set(items(capabilities.get("add"))) - {"NET_BIND_SERVICE"}
        if added:
            yield f"container {name}: adds capabilities {sorted(added)}"
        seccomp = mapping(_effective(pod, c, "seccompProfile")).get("type")
        if seccomp not in SECCOMP_OK:
            yield f"container {name}: seccompProfile is {seccomp or 'not set'}: use RuntimeDefault"
    for volume in items(pod.get("volumes")):
        kinds = set(mapping(volume)) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            yield f"volume {mapping(volume).get('name')}: {sorted(kinds)} is not allowed"


@resource_rule(
    "W2",
    "k8s-no-host-access",
    types=t.POD_CONTROLLERS,
    sources=("PSS baseline", "CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19", "CKV_K8S_26"),
    severity=Severity.HIGH,
    description="Pods share none of the node's namespaces and mount no host paths or ports",
)
def no_host_access(args: ResourceValidationArgs) -> Iterator[str]:
    pod, containers = _pods(args)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if is_true(pod.get(key)):
            yield f"{key} is true"
    for volume in items(pod.get("volumes")):
        if "hostPath" in mapping(volume):
            yield f"volume {mapping(volume).get('name')}: hostPath"
    for c in containers:
        for port in items(c.get("ports")):
            if mapping(port).get("hostPort"):
                yield f"container {_name(c)}: hostPort {mapping(port).get('hostPort')}"


@resource_rule(
    "W3",
    "k8s-readonly-root-filesystem",
    types=t.POD_CONTROLLERS,
    sources=("CKV_K8S_22",),
    severity=Severity.MEDIUM,
    description="Every container has a read-only root filesystem (writable emptyDir for /tmp)",
)
def readonly_root(args: ResourceValidationArgs) -> Iterator[str]:
    for c in _pods(args)[1]:
        if mapping(c.get("securityContext")).get("readOnlyRootFilesystem") is not True:
            yield f"container {_name(c)}: readOnlyRootFilesystem is not true"


@resource_rule(
    "W4",
    "k8s-resources",
    types=t.POD_CONTROLLERS,
    sources=("CKV_K8S_10", "CKV_K8S_12", "CKV_K8S_13"),
    severity=Severity.MEDIUM,
    description="Every container requests CPU and memory and has a memory limit (no CPU "
    "limit required: throttling; CKV_K8S_11 is not followed)",
)
def resources(args: ResourceValidationArgs) -> Iterator[str]:
    for c in _pods(args)[1]:
        found = mapping(c.get("resources"))
        requests, limits = mapping(found.get("requests")), mapping(found.get("limits"))
        for key in ("cpu", "memory"):
            if not requests.get(key):
                yield f"container {_name(c)}: no {key} request"
        if not limits.get("memory"):
            yield f"container {_name(c)}: no memory limit"


@resource_rule(
    "W5",
    "k8s-probes",
    types=t.POD_CONTROLLERS,
    sources=("CKV_K8S_8", "CKV_K8S_9"),
    severity=Severity.MEDIUM,
    description="Every container that listens on a port has readiness and liveness probes",
)
def probes(args: ResourceValidationArgs) -> Iterator[str]:
    pod = _pods(args)[0]
    for c in items(pod.get("containers")):
        c = mapping(c)
        if not items(c.get("ports")):
            continue
        for probe in ("readinessProbe", "livenessProbe"):
            if not mapping(c.get(probe)):
                yield f"container {_name(c)}: listens on a port but has no {probe}"


@resource_rule(
    "W6",
    "k8s-immutable-image",
    types=t.POD_CONTROLLERS,
    sources=("CKV_K8S_43", "CKV_K8S_14"),
    severity=Severity.MEDIUM,
    description="Images are referenced by digest or by an exact version tag, never latest "
    "or no tag",
)
def immutable_image(args: ResourceValidationArgs) -> Iterator[str]:
    for c in _pods(args)[1]:
        image = str(c.get("image") or "")
        if DIGEST.search(image) or VERSION_TAG.search(image):
            continue
        yield f"container {_name(c)}: image {image or '(none)'} is neither a digest nor x.y.z"


@resource_rule(
    "W7",
    "k8s-namespace-enforces-restricted",
    types=t.K8S_NAMESPACE,
    sources=("PSA restricted", "CIS EKS 4.2"),
    severity=Severity.HIGH,
    description='Namespaces enforce Pod Security "restricted" (the admission controller '
    "refuses any pod that does not meet it)",
)
def namespace_restricted(args: ResourceValidationArgs) -> Iterator[str]:
    found = mapping(mapping(args.props.get("metadata")).get("labels")).get(ENFORCE)
    if found != "restricted":
        yield f"label {ENFORCE} is {found or 'not set'}: set it to restricted"


# --- the namespace as a whole --------------------------------------------------------------


def _namespace(props: Mapping[str, Any]) -> str:
    return str(mapping(props.get("metadata")).get("namespace") or "default")


def _template_labels(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = mapping(props.get("spec"))
    if resource_type == t.K8S_POD:
        return mapping(mapping(props.get("metadata")).get("labels"))
    if resource_type == t.K8S_CRON_JOB:
        spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    return mapping(mapping(mapping(spec.get("template")).get("metadata")).get("labels"))


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether a label selector with matchLabels only selects these labels (an empty
    selector selects every pod; matchExpressions are not read, so they never match)."""
    if items(selector.get("matchExpressions")):
        return False
    wanted = mapping(selector.get("matchLabels"))
    return all(labels.get(k) == v for k, v in wanted.items())


@stack_rule(
    "W8",
    "k8s-pods-have-security-groups",
    sources=("Cold Reach DESIGN decision 8", "EKS security groups for pods"),
    severity=Severity.HIGH,
    description="Every pod is selected by a SecurityGroupPolicy with a group, so it never "
    "falls back to the node's group (and whatever the node may reach)",
)
def pods_have_security_groups(args: StackValidationArgs) -> Iterator[tuple[str | None, str]]:
    policies = [
        (_namespace(p.props), mapping(mapping(p.props.get("spec")).get("podSelector")))
        for p in of_type(args, t.K8S_SECURITY_GROUP_POLICY)
        if items(mapping(mapping(p.props.get("spec")).get("securityGroups")).get("groupIds"))
    ]
    for r in of_type(args, *t.POD_CONTROLLERS):
        namespace, labels = _namespace(r.props), _template_labels(r.resource_type, r.props)
        if not any(ns == namespace and _selects(s, labels) for ns, s in policies):
            yield r.urn, "no SecurityGroupPolicy selects its pods: they would get the node's group"


@stack_rule(
    "W9",
    "k8s-namespace-default-deny",
    sources=("CKV2_K8S_6", "NSA/CISA Kubernetes hardening"),
    severity=Severity.HIGH,
    description="Every namespace with pods has a NetworkPolicy that denies all ingress and "
    "egress to every pod it does not otherwise allow",
)
def namespace_default_deny(args: StackValidationArgs) -> Iterator[tuple[str | None, str]]:
    denied: set[str] = set()
    for p in of_type(args, t.K8S_NETWORK_POLICY):
        spec = mapping(p.props.get("spec"))
        every_pod = not mapping(spec.get("podSelector"))
        types = set(items(spec.get("policyTypes")))
        if (
            every_pod
            and {"Ingress", "Egress"} <= types
            and not items(spec.get("ingress"))
            and (not items(spec.get("egress")))
        ):
            denied.add(_namespace(p.props))
    for r in of_type(args, *t.POD_CONTROLLERS):
        if _namespace(r.props) not in denied:
            yield r.urn, f"namespace {_namespace(r.props)} has no default-deny NetworkPolicy"
