"""Cases for the Pod-spec rules (W1-W7): one compliant Deployment, then one change per way
to fail each rule, including the property-missing case."""

from __future__ import annotations

import copy
from typing import Any

from policies import tokens as t

DIGEST = "sha256:" + "a" * 64
CONTAINER: dict[str, Any] = {
    "name": "api",
    "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/app@{DIGEST}",
    "ports": [{"name": "http", "containerPort": 8000}],
    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8000}},
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8000}},
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
}
POD: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [CONTAINER],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}
NAMESPACE = {
    "metadata": {
        "name": "coldreach",
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
    }
}

Case = tuple[str, str, str, dict[str, Any], str | None]


def deployment(pod: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": {"template": {"spec": copy.deepcopy(pod or POD)}}}


def pod(**changes: Any) -> dict[str, Any]:
    found = copy.deepcopy(POD)
    for key, value in changes.items():
        if value is None:
            found.pop(key, None)
        else:
            found[key] = value
    return found


def container(security: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """The compliant container with fields replaced (None deletes) and securityContext keys
    replaced (None deletes)."""
    found = copy.deepcopy(CONTAINER)
    for key, value in changes.items():
        if value is None:
            found.pop(key, None)
        else:
            found[key] = value
    for key, value in (security or {}).items():
        if value is None:
            found["securityContext"].pop(key, None)
        else:
            found["securityContext"][key] = value
    return found


def with_container(c: dict[str, Any]) -> dict[str, Any]:
    return deployment(pod(containers=[c]))


def case(rule: str, label: str, props: dict[str, Any], expect: str | None = None) -> Case:
    return (rule, label, t.K8S_DEPLOYMENT, props, expect)


ok = deployment()
KUBERNETES_CASES: list[Case] = [
    case("W1", "restricted", ok),
    (
        "W1",
        "cron-job",
        t.K8S_CRON_JOB,
        {"spec": {"jobTemplate": {"spec": {"template": {"spec": POD}}}}},
        None,
    ),
    ("W1", "pod", t.K8S_POD, {"spec": copy.deepcopy(POD)}, None),
    case("W1", "no-containers", {"spec": {}}, "no containers"),
    case(
        "W1",
        "non-root-missing",
        deployment(
            pod(
                securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
                containers=[container({"runAsNonRoot": None})],
            )
        ),
        "runAsNonRoot",
    ),
    case("W1", "root-user", with_container(container({"runAsUser": 0})), "runAsUser is 0"),
    case(
        "W1",
        "escalation-missing",
        with_container(container({"allowPrivilegeEscalation": None})),
        "allowPrivilegeEscalation",
    ),
    case("W1", "privileged", with_container(container({"privileged": True})), "privileged"),
    case("W1", "capabilities-kept", with_container(container({"capabilities": {}})), "drop ALL"),
    case(
        "W1",
        "capability-added",
        with_container(container({"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}})),
        "NET_ADMIN",
    ),
    case(
        "W1",
        "bind-service-allowed",
        with_container(container({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})),
    ),
    case(
        "W1",
        "seccomp-missing",
        deployment(
            pod(
                securityContext={"runAsNonRoot": True},
                containers=[container({"seccompProfile": None})],
            )
        ),
        "seccompProfile",
    ),
    case(
        "W1",
        "seccomp-unconfined",
        with_container(container({"seccompProfile": {"type": "Unconfined"}})),
        "Unconfined",
    ),
    case(
        "W1",
        "host-path-volume",
        deployment(pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}])),
        "hostPath",
    ),
    case("W2", "isolated", ok),
    case("W2", "host-network", deployment(pod(hostNetwork=True)), "hostNetwork"),
    case("W2", "host-pid", deployment(pod(hostPID=True)), "hostPID"),
    case(
        "W2",
        "host-path",
        deployment(pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}])),
        "hostPath",
    ),
    case(
        "W2",
        "host-port",
        with_container(container(ports=[{"containerPort": 80, "hostPort": 80}])),
        "hostPort",
    ),
    case("W3", "readonly", ok),
    case(
        "W3",
        "missing",
        with_container(container({"readOnlyRootFilesystem": None})),
        "readOnlyRootFilesystem",
    ),
    case(
        "W3",
        "false",
        with_container(container({"readOnlyRootFilesystem": False})),
        "readOnlyRootFilesystem",
    ),
    case("W4", "sized", ok),
    case("W4", "missing", with_container(container(resources=None)), "no cpu request"),
    case(
        "W4",
        "no-memory-limit",
        with_container(container(resources={"requests": {"cpu": "1", "memory": "1Gi"}})),
        "no memory limit",
    ),
    case("W5", "probed", ok),
    case(
        "W5",
        "worker-without-port",
        with_container(container(ports=None, readinessProbe=None, livenessProbe=None)),
    ),
    case("W5", "no-liveness", with_container(container(livenessProbe=None)), "livenessProbe"),
    case("W5", "no-readiness", with_container(container(readinessProbe=None)), "readinessProbe"),
    case("W6", "digest", ok),
    case("W6", "version-tag", with_container(container(image="jaegertracing/jaeger:2.17.0"))),
    case("W6", "latest", with_container(container(image="jaegertracing/jaeger:latest")), "neither"),
    case("W6", "no-tag", with_container(container(image="jaegertracing/jaeger")), "neither"),
    case("W6", "missing", with_container(container(image=None)), "(none)"),
    ("W7", "restricted", t.K8S_NAMESPACE, NAMESPACE, None),
    ("W7", "missing", t.K8S_NAMESPACE, {"metadata": {"name": "x"}}, "not set"),
    (
        "W7",
        "baseline",
        t.K8S_NAMESPACE,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}},
        "is baseline",
    ),
]


def add_workload(g: Any) -> Any:
    """A namespace with one Deployment behind its own security group and a default deny:
    what W8 and W9 accept (`g` is policy_helpers.Graph)."""
    labels = {"app.kubernetes.io/name": "api"}
    meta = {"name": "api", "namespace": "coldreach", "labels": labels}
    g.add(t.K8S_NAMESPACE, "ns", NAMESPACE)
    g.add(t.SECURITY_GROUP, "api-pods", {"description": "api pods"})
    template = {"metadata": {"labels": labels}, "spec": copy.deepcopy(POD)}
    g.add(t.K8S_DEPLOYMENT, "api-deployment", {"metadata": meta, "spec": {"template": template}})
    g.add(
        t.K8S_SECURITY_GROUP_POLICY,
        "api-sgp",
        {"metadata": meta, "spec": {"podSelector": {"matchLabels": labels},
                                    "securityGroups": {"groupIds": ["sg-api"]}}},
        spec="api-pods",
    )  # fmt: skip
    deny = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    deny_meta = {"name": "default-deny", "namespace": "coldreach"}
    g.add(t.K8S_NETWORK_POLICY, "deny", {"metadata": deny_meta, "spec": deny})
    return g


def _drop_egress_from_deny(g: Any) -> None:
    g.props("deny")["spec"]["policyTypes"] = ["Ingress"]


def _allow_everything_in_deny(g: Any) -> None:
    g.props("deny")["spec"]["egress"] = [{}]


def _select_other_pods(g: Any) -> None:
    g.props("api-sgp")["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/name": "x"}}


def _other_namespace(g: Any) -> None:
    g.props("api-sgp")["metadata"] = {"name": "api", "namespace": "default"}


def _no_groups(g: Any) -> None:
    g.props("api-sgp")["spec"]["securityGroups"] = {"groupIds": []}


KUBERNETES_STACK_FAILING = [
    # (rule, label, change, resource named in the finding, message fragment)
    ("W8", "missing", lambda g: g.remove("api-sgp"), "api-deployment", "no SecurityGroupPolicy"),
    ("W8", "other-pods", _select_other_pods, "api-deployment", "no SecurityGroupPolicy"),
    ("W8", "other-namespace", _other_namespace, "api-deployment", "no SecurityGroupPolicy"),
    ("W8", "no-groups", _no_groups, "api-deployment", "no SecurityGroupPolicy"),
    ("W9", "missing", lambda g: g.remove("deny"), "api-deployment", "no default-deny"),
    ("W9", "ingress-only", _drop_egress_from_deny, "api-deployment", "no default-deny"),
    ("W9", "allows-all", _allow_everything_in_deny, "api-deployment", "no default-deny"),
]
