"""The declared topology is what the program deploys: every rule between our security
groups is a declared flow, every declared flow has its rules, and what a service gets
(credentials, settings, IAM grants) follows from what it says it reaches."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from deployment_helpers import containers, policy_statements

from coldreach import graph
from coldreach.runtime import Deployment
from infra import phases, topology
from infra.config import parse

MAIL = {"senderDomain": "mail.example.com"}


def _node(d: Deployment, group_id: str | None) -> str:
    if group_id is None:
        return topology.INTERNET
    return d.by_id(group_id).get("tags")["coldreach:node"]


def _deployed_flows(d: Deployment) -> set[tuple[str, str, int]]:
    flows = set()
    for rule in graph.ingress(d):
        source = _node(d, rule.source_group)
        assert rule.port_from == rule.port_to, "one port per rule"
        flows.add((source, _node(d, rule.group_id), int(rule.port_from or 0)))
    for r in d.of_type(graph.EGRESS):
        target = r.get("referencedSecurityGroupId")
        node = _node(d, target) if target else topology.AWS_APIS
        flows.add((_node(d, r.get("securityGroupId")), node, r.get("fromPort")))
    return flows


@pytest.mark.parametrize(("stack", "phase"), [("dev", 1), ("dev", 2), ("staging", 2), ("prod", 2)])
def test_rules_between_groups_are_exactly_the_declared_flows(
    program: Callable[..., Deployment], stack: str, phase: int
) -> None:
    d = program(stack, phase)
    declared = {(f["from"], f["to"], f["port"]) for f in d.output("topology")["flows"]}
    assert _deployed_flows(d) == declared
    assert declared == {
        (f.source, f.target, f.port) for f in topology.declare(phases.of(phase)).flows()
    }


def test_who_may_reach_the_database_is_answered_by_the_declaration(
    program: Callable[..., Deployment],
) -> None:
    d = program("staging")
    tiers = d.output("topology")["tiers"]
    assert tiers["database"]["admits"] == ["web", "worker"]
    assert tiers["cache"]["admits"] == ["web", "worker"]
    [db_sg] = graph.security_groups_of(d, d.named("db-instance"))
    assert db_sg.get("tags")["coldreach:admits"] == "web worker"
    assert {_node(d, i.source_group) for i in graph.ingress(d, db_sg.id)} == {"web", "worker"}


def test_a_service_gets_only_what_it_reaches(program: Callable[..., Deployment]) -> None:
    d = program("staging", **MAIL)
    by_family = {
        td.get("family").rsplit("-", 1)[-1]: json.loads(td.get("containerDefinitions"))[0]
        for td in d.of_type("aws:ecs/taskDefinition:TaskDefinition")
    }
    # The services, and the database's one-off tasks (cold-reach:dbIamAuth roles).
    assert len(containers(d)) == len(by_family) == 4
    assert set(by_family) == {"web", "worker", "bootstrap", "migrate"}
    web = {e["name"] for e in by_family["web"]["environment"]}
    worker = {e["name"] for e in by_family["worker"]["environment"]}
    # The worker never reads lists, so it gets no replica; the web reads them.
    assert "DB_READ_HOST" in web and "DB_READ_HOST" not in worker
    secrets = {name: {s["name"] for s in c["secrets"]} for name, c in by_family.items()}
    assert {"DB_USER", "DB_PASSWORD", "REDIS_URL"} <= secrets["web"] & secrets["worker"]

    # Only the service that sends holds the SES grant: the worker in phase 2.
    def sends(d: Deployment, service: str) -> bool:
        policies = [
            p for p in d.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{service}-task"
        ]
        return any(
            "ses:SendEmail" in json.dumps(s)
            for p in policies
            for s in policy_statements(p.get("policy"))
        )

    assert sends(d, "worker") and not sends(d, "web")
    # In phase 1 the web sends itself (background work runs in its process).
    assert sends(program("dev", **MAIL), "web")


def test_a_reach_removed_from_the_declaration_removes_its_rules_and_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coldreach.evaluation import evaluate_stack

    worker = next(s for s in topology.SERVICES if s.name == "worker")
    without_cache = topology.Service(
        worker.name,
        worker.kind,
        worker.runs,
        tuple(r for r in worker.reaches if r.target != "cache"),
    )
    monkeypatch.setattr(
        topology,
        "SERVICES",
        tuple(without_cache if s is worker else s for s in topology.SERVICES),
    )
    d = evaluate_stack("staging")
    assert ("worker", "cache", 6379) not in _deployed_flows(d)
    assert ("web", "cache", 6379) in _deployed_flows(d)
    td = next(t for t in d.of_type("aws:ecs/taskDefinition:TaskDefinition")
              if t.get("family").endswith("-worker"))  # fmt: skip
    assert "REDIS_URL" not in {
        s["name"] for s in json.loads(td.get("containerDefinitions"))[0]["secrets"]
    }


def test_connection_pools_follow_who_reaches_each_endpoint() -> None:
    s = parse("staging", {"phase": "2"}.get, "us-east-1")
    pools = s.pools()
    assert [p.service for p in pools["primary"]] == ["web", "worker"]
    assert [p.service for p in pools["replica"]] == ["web"]
    assert list(parse("dev", {}.get, "us-east-1").pools()) == ["primary"]


def test_phase_table_reads_like_the_scaling_plan() -> None:
    one, two, three = (phases.of(p) for p in (1, 2, 3))
    assert (one.nat, one.queue, one.replica, one.cache) == (False, "inline", False, False)
    assert (two.nat, two.queue, two.replica, two.cache) == (True, "celery", True, True)
    assert (three.kafka, three.shards, three.cluster, three.tracing) == (True,) * 4
    # Phase 3 evaluates with what the program builds of it (MSK, shards, ...).
    assert three.not_built() == []
    assert [s.name for s in topology.running(one)] == ["web"]
    assert [s.name for s in topology.running(two)] == ["web", "worker"]


def test_graph_finds_rules_the_declaration_does_not_have(
    program: Callable[..., Deployment],
) -> None:
    import copy

    from coldreach.runtime.model import Resource

    d = program("staging")
    assert graph.undeclared_ingress(d) == []
    d = copy.deepcopy(d)
    cache_sg = d.named("cache-sg")
    edge_sg = d.named("edge-sg")
    # The older rule resource, from a group the declaration never lets reach Redis.
    d.resources.append(
        Resource(
            urn="urn:pulumi:staging::cold-reach::aws:ec2/securityGroupRule:SecurityGroupRule::x",
            type=graph.SG_RULE,
            name="x",
            id="sgr-x",
            parent=None,
            custom=True,
            protect=False,
            inputs={
                "type": "ingress",
                "securityGroupId": cache_sg.id,
                "sourceSecurityGroupId": edge_sg.id,
                "protocol": "tcp",
                "fromPort": 6379,
                "toPort": 6379,
            },
            outputs={},
        )
    )
    [found] = graph.undeclared_ingress(d)
    assert (found.rule.name, found.source_group, found.group_id) == ("x", edge_sg.id, cache_sg.id)


def test_phase_3_declares_the_cluster_services_beside_the_ecs_ones_until_retired() -> None:
    during = topology.declare(phases.of(3))
    assert [s.name for s in during.on(topology.Platform.ECS)] == ["web", "worker"]
    assert [s.name for s in during.on(topology.Platform.EKS)] == [
        "api", "clients", "campaigns", "sender", "tracing"
    ]  # fmt: skip
    after = topology.declare(phases.of(3).retired())
    assert after.on(topology.Platform.ECS) == []
    assert "cache" not in {t.name for t in after.tiers}
    with pytest.raises(ValueError, match="retire"):
        phases.of(2).retired()


def test_phase_3_flows_are_exactly_what_each_service_names() -> None:
    t = topology.declare(phases.of(3).retired())
    flows = {(f.source, f.target, f.port) for f in t.flows()}
    between_us = {f for f in flows if topology.AWS_APIS not in f and topology.INTERNET not in f}
    assert between_us == {
        ("edge", "api", 8000),
        ("api", "database", 5432), ("api", "clients", 50051), ("api", "campaigns", 50052),
        ("api", "tracing", 4317),
        ("clients", "database", 5432), ("clients", "tracing", 4317),
        ("campaigns", "database", 5432), ("campaigns", "clients", 50051),
        ("campaigns", "kafka", 9098), ("campaigns", "tracing", 4317),
        ("sender", "database", 5432), ("sender", "kafka", 9098), ("sender", "tracing", 4317),
    }  # fmt: skip
    # MSK's topic API creates the topics: no client but the app's needs a way in.
    assert t.admits("kafka") == ["campaigns", "sender"]
    assert t.admits("clients") == ["api", "campaigns"]
    # The tracing backend keeps spans in the cluster: it alone has no way out to AWS.
    assert ("tracing", topology.AWS_APIS, 443) not in flows
    assert ("sender", topology.AWS_APIS, 443) in flows
    # Only the sender fleet may send mail.
    assert [s.name for s in t.services if s.may_reach(t.features, topology.SES)] == ["sender"]


def test_during_the_cutover_the_database_admits_both_generations() -> None:
    t = topology.declare(phases.of(3))
    assert t.admits("database") == ["web", "worker", "api", "clients", "campaigns", "sender"]
    assert t.admits("cache") == ["web", "worker"]
    # Without tracing the services name no tracing flow, and no tracing backend runs.
    no_tracing = topology.declare(replace(phases.of(3), tracing=False))
    assert "tracing" not in {s.name for s in no_tracing.services}
    assert all(f.target != "tracing" for f in no_tracing.flows())
