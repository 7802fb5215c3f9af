"""The pack as Pulumi runs it: `policies/__main__.py` in its own process, spoken to over the
analyzer gRPC protocol, the way the engine does during `pulumi preview --policy-pack`.

It must list every rule, and report for a real deployment exactly what the offline
evaluation reports: same policy, resource, message and level.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from coldreach import policy_eval
from coldreach.runtime import Deployment
from coldreach.runtime.model import reveal
from policies import catalog, stack_config
from policies.tokens import INGRESS

POLICIES = Path(__file__).resolve().parents[2] / "policies"

Finding = tuple[str, str, str, str]  # policy, urn, message, enforcement


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack's analyzer server; it prints its port, then serves until stopped."""
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=POLICIES,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"no port: {port!r}; stderr: {process.stderr}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _configure(analyzer: analyzer_pb2_grpc.AnalyzerStub, stack: str) -> None:
    """What the CLI sends for `--policy-pack-config policies/config/<stack>.json`."""
    config = stack_config.load(stack)
    analyzer.Configure(
        proto.ConfigureAnalyzerRequest(
            policyConfig={
                rule.name: proto.PolicyConfig(
                    enforcementLevel=proto.EnforcementLevel.Value(
                        stack_config.level(rule, config).value.upper()
                    ),
                    properties=_struct(stack_config.properties(rule, config)),
                )
                for rule in catalog.rules()
            }
        )
    )


def _resource(r: Any, index: dict[str, str]) -> proto.AnalyzerResource:
    return proto.AnalyzerResource(
        type=r.type,
        properties=_struct(reveal(r.inputs)),
        urn=r.urn,
        name=r.name,
        options=proto.AnalyzerResourceOptions(protect=r.protect),
        parent=r.parent or "",
        dependencies=r.dependencies,
        propertyDependencies={
            key: proto.AnalyzerPropertyDependencies(urns=urns)
            for key, urns in policy_eval.property_dependencies(r, index).items()
        },
    )


def _level(value: int) -> str:
    return proto.EnforcementLevel.Name(value).lower()  # type: ignore[arg-type]


def served(analyzer: analyzer_pb2_grpc.AnalyzerStub, d: Deployment, stack: str) -> set[Finding]:
    _configure(analyzer, stack)
    index = policy_eval.id_index(d.resources)
    found: set[Finding] = set()
    for r in d.resources:
        request = proto.AnalyzeRequest(
            type=r.type,
            properties=_struct(reveal(r.inputs)),
            urn=r.urn,
            name=r.name,
            options=proto.AnalyzerResourceOptions(protect=r.protect),
        )
        for diag in analyzer.Analyze(request).diagnostics:
            message = diag.message.split("\n", 1)[1]
            found.add((diag.policyName, r.urn, message, _level(diag.enforcementLevel)))
    stack_request = proto.AnalyzeStackRequest(resources=[_resource(r, index) for r in d.resources])
    for diag in analyzer.AnalyzeStack(stack_request).diagnostics:
        message = diag.message.split("\n", 1)[1]
        found.add((diag.policyName, diag.urn, message, _level(diag.enforcementLevel)))
    return found


def offline_findings(d: Deployment, stack: str) -> set[Finding]:
    return {
        (v.policy, v.urn or "", v.message, v.enforcement) for v in policy_eval.evaluate(d, stack)
    }


def test_the_served_pack_lists_every_rule(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == catalog.PACK_NAME
    served_levels = {p.name: _level(p.enforcementLevel) for p in info.policies}
    assert served_levels == {r.name: r.enforcement.value for r in catalog.rules()}


def _break_network(d: Deployment) -> None:
    """The data tier reachable from an address range and the world; a task with a public IP."""
    rules = {r.name: r for r in d.of_type(INGRESS)}
    del rules["db-sg-in-web-sg"].inputs["referencedSecurityGroupId"]
    rules["db-sg-in-web-sg"].inputs["cidrIpv4"] = "10.41.0.0/16"
    rules["cache-sg-in-worker-sg"].inputs["cidrIpv4"] = "0.0.0.0/0"
    service = next(r for r in d.of_type("aws:ecs/service:Service") if r.name == "worker-service")
    service.inputs["networkConfiguration"]["assignPublicIp"] = True


def _open_kafka(d: Deployment) -> None:
    """MSK without IAM, reachable without credentials and from the internet."""
    [cluster] = d.of_type("aws:msk/cluster:Cluster")
    cluster.inputs["clientAuthentication"] = {"unauthenticated": True}
    info = cluster.inputs["brokerNodeGroupInfo"]
    info["connectivityInfo"] = {"publicAccess": {"type": "SERVICE_PROVIDED_EIPS"}}


@pytest.mark.parametrize(
    ("stack", "overrides", "change"),
    [
        pytest.param("staging", {}, None, id="staging"),
        pytest.param("dev", {}, None, id="dev"),
        pytest.param("prod", {}, None, id="prod-without-certificate"),
        pytest.param("staging", {"ephemeral": "true"}, None, id="staging-ephemeral"),
        pytest.param("staging", {}, _break_network, id="staging-broken-network"),
        pytest.param("staging", {"phase": "3"}, None, id="staging-phase3"),
        pytest.param("staging", {"phase": "3"}, _open_kafka, id="staging-phase3-open-kafka"),
    ],
)
def test_served_and_offline_findings_agree(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
    program: Callable[..., Deployment],
    stack: str,
    overrides: dict[str, str],
    change: Callable[[Deployment], None] | None,
) -> None:
    d = copy.deepcopy(program(stack, **overrides))
    if change:
        change(d)
    expected = offline_findings(d, stack)
    assert expected
    assert served(analyzer, d, stack) == expected


def test_the_broken_network_is_found_by_the_graph_rules(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, program: Callable[..., Deployment]
) -> None:
    d = copy.deepcopy(program("staging"))
    _break_network(d)
    mandatory = {(f[0], f[1].rsplit("::", 1)[1]) for f in served(analyzer, d, "staging")
                 if f[3] == "mandatory"}  # fmt: skip
    assert mandatory == {
        ("data-tier-ingress-only-from-app", "db-sg-in-web-sg"),
        ("data-tier-ingress-only-from-app", "cache-sg-in-worker-sg"),
        ("world-ingress-only-http-https", "cache-sg-in-worker-sg"),
        ("world-ingress-only-on-public-load-balancer", "cache-sg-in-worker-sg"),
        ("ecs-service-no-public-ip", "worker-service"),
    }


def test_an_open_kafka_is_found_by_the_served_pack(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, program: Callable[..., Deployment]
) -> None:
    d = copy.deepcopy(program("staging", phase=3))
    _open_kafka(d)
    policies = {policy for policy, _, _, level in served(analyzer, d, "staging")
                if level == "mandatory"}  # fmt: skip
    assert policies == {"msk-iam-authentication", "msk-private-logged"}
