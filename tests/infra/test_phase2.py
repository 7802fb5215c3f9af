"""Phase 2: the scaling plan's growth architecture, for staging (the seed's sizes) and prod."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from deployment_helpers import containers, policy_statements

from coldreach import graph
from coldreach.runtime import Deployment
from infra import capacity


@pytest.fixture(scope="module")
def staging(program) -> Deployment:
    return program("staging")


@pytest.fixture(scope="module")
def prod(program) -> Deployment:
    return program("prod")


def _service(d: Deployment, name: str):
    return next(r for r in d.of_type("aws:ecs/service:Service") if r.name == f"{name}-service")


def _env(d: Deployment, service: str) -> dict[str, str]:
    """The environment of `service` (web or worker); the family is per stack."""
    family = f"cold-reach-{d.stack}-{service}"
    td = next(r for r in d.of_type("aws:ecs/taskDefinition:TaskDefinition") if r.id == family)
    [container] = json.loads(td.get("containerDefinitions"))
    return {e["name"]: e["value"] for e in container["environment"]}


def test_staging_has_the_seed_infrastructure_spec(staging: Deployment) -> None:
    # ECS Fargate, RDS PostgreSQL db.t3.medium with 1 read replica, ElastiCache
    # Redis cache.t3.micro, public subnets for the ALB, private for ECS and RDS.
    counts = Counter(r.type for r in staging if r.custom)
    assert counts["aws:ecs/cluster:Cluster"] == 1
    assert counts["aws:ecs/service:Service"] == 2
    instances = staging.of_type("aws:rds/instance:Instance")
    primary = next(r for r in instances if not r.get("replicateSourceDb"))
    [replica] = [r for r in instances if r.get("replicateSourceDb")]
    assert primary.get("instanceClass") == replica.get("instanceClass") == "db.t3.medium"
    assert replica.get("replicateSourceDb") == primary.id
    [redis] = staging.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert redis.get("nodeType") == "cache.t3.micro" and redis.get("engine") == "redis"
    [alb] = staging.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert {staging.by_id(s).get("tags")["tier"] for s in alb.get("subnets")} == {"public"}
    for name in ("web", "worker"):
        net = _service(staging, name).get("networkConfiguration")
        assert {staging.by_id(s).get("tags")["tier"] for s in net["subnets"]} == {"private"}
        assert net["assignPublicIp"] is False
    subnet_group = staging.by_id(primary.get("dbSubnetGroupName"))
    assert {staging.by_id(s).get("tags")["tier"] for s in subnet_group.get("subnetIds")} == {
        "private"
    }


def test_phase2_inventory_adds_exactly_worker_replica_cache_and_nat(
    staging: Deployment, program
) -> None:
    phase1 = Counter(r.type for r in program("staging", phase=1) if r.custom)
    phase2 = Counter(r.type for r in staging if r.custom)
    added = phase2 - phase1
    assert dict(added) == {
        "aws:ec2/eip:Eip": 1,
        "aws:ec2/natGateway:NatGateway": 1,
        "aws:ec2/route:Route": 2,
        "aws:rds/instance:Instance": 1,
        "aws:elasticache/subnetGroup:SubnetGroup": 1,
        "aws:elasticache/replicationGroup:ReplicationGroup": 1,
        "aws:ec2/securityGroup:SecurityGroup": 2,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 3,
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": 4,
        "random:index/randomPassword:RandomPassword": 1,
        "aws:secretsmanager/secret:Secret": 2,
        "aws:secretsmanager/secretVersion:SecretVersion": 2,
        "aws:ecs/taskDefinition:TaskDefinition": 1,
        "aws:ecs/service:Service": 1,
        "aws:cloudwatch/logGroup:LogGroup": 1,
        "aws:iam/role:Role": 2,
        "aws:iam/rolePolicy:RolePolicy": 2,
        "aws:appautoscaling/target:Target": 2,
        "aws:appautoscaling/policy:Policy": 2,
        # The alarm on emails stuck in sending, and the topic it notifies.
        "aws:cloudwatch/metricAlarm:MetricAlarm": 1,
        "aws:sns/topic:Topic": 1,
    }
    assert not phase1 - phase2, "phase 2 keeps every phase-1 resource"


def test_data_tiers_admit_only_web_and_worker(staging: Deployment) -> None:
    web_sg = graph.security_groups_of(staging, _service(staging, "web"))[0]
    worker_sg = graph.security_groups_of(staging, _service(staging, "worker"))[0]
    tiers = {
        5432: staging.of_type("aws:rds/instance:Instance"),
        6379: staging.of_type("aws:elasticache/replicationGroup:ReplicationGroup"),
    }
    for port, resources in tiers.items():
        for resource in resources:
            groups = graph.security_groups_of(staging, resource)
            assert len(groups) == 1
            rules = graph.ingress(staging, groups[0].id)
            assert {r.source_group for r in rules} == {web_sg.id, worker_sg.id}, resource.name
            assert all(r.cidr is None for r in rules)
            assert all((r.port_from, r.port_to, r.protocol) == (port, port, "tcp") for r in rules)


def test_nothing_public_but_the_alb_on_80_and_443(staging: Deployment, prod: Deployment) -> None:
    for d in (staging, prod):
        [alb] = d.of_type("aws:lb/loadBalancer:LoadBalancer")
        [alb_sg] = graph.security_groups_of(d, alb)
        world = [i for i in graph.ingress(d) if i.from_world]
        assert {i.group_id for i in world} == {alb_sg.id}
        assert sorted(i.port_from for i in world) == [80, 443]
        assert not [i for i in graph.ingress(d) if i.cidr and not i.from_world]
        for service in d.of_type("aws:ecs/service:Service"):
            assert service.get("networkConfiguration")["assignPublicIp"] is False
        # The worker takes no traffic at all.
        worker_sg = graph.security_groups_of(d, _service(d, "worker"))[0]
        assert graph.ingress(d, worker_sg.id) == []


def test_private_subnets_leave_through_nat_one_or_per_az(
    staging: Deployment, prod: Deployment
) -> None:
    for d, expected in ((staging, 1), (prod, 2)):
        nats = d.of_type("aws:ec2/natGateway:NatGateway")
        assert len(nats) == expected
        for nat in nats:
            assert d.by_id(nat.get("subnetId")).get("tags")["tier"] == "public"
        routes = [r for r in d.of_type("aws:ec2/route:Route") if r.get("natGatewayId")]
        assert len(routes) == 2  # one per private route table
        assert {r.get("natGatewayId") for r in routes} == {n.id for n in nats}


def test_replica_keeps_the_primary_protections(staging: Deployment) -> None:
    [replica] = [
        r for r in staging.of_type("aws:rds/instance:Instance") if r.get("replicateSourceDb")
    ]
    assert replica.protect is True
    assert replica.get("publiclyAccessible") is False
    assert replica.get("deletionProtection") is True
    assert replica.get("storageEncrypted") is True
    assert replica.get("backupRetentionPeriod") >= 7
    for key in ("username", "password", "dbName", "engine"):
        assert key not in replica.inputs, f"a replica takes {key} from its source"
    assert _env(staging, "web")["DB_READ_HOST"] == replica.out("address")


def test_cache_is_encrypted_authenticated_snapshotted_and_protected(staging: Deployment) -> None:
    [redis] = staging.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert redis.protect is True
    assert redis.get("atRestEncryptionEnabled") is True
    assert redis.get("transitEncryptionEnabled") is True
    assert redis.get("transitEncryptionMode") == "required"
    assert isinstance(redis.inputs["authToken"], dict), "the auth token is a secret"
    assert redis.get("snapshotRetentionLimit") >= 1
    assert staging.by_id(redis.get("subnetGroupName")).type.startswith(
        "aws:elasticache/subnetGroup"
    )
    for r in staging:
        if r.type.startswith("aws:elasticache/"):
            assert r.name == r.name.lower()
    for name in ("web", "worker"):
        container = next(
            c
            for c in containers(staging)
            if c["logConfiguration"]["options"]["awslogs-stream-prefix"] == name
        )
        injected = {s["name"] for s in container["secrets"]}
        assert "REDIS_URL" in injected
        assert "REDIS_URL" not in {e["name"] for e in container["environment"]}


def test_web_and_worker_run_the_same_image_with_their_own_commands(staging: Deployment) -> None:
    by_service = {
        c["logConfiguration"]["options"]["awslogs-stream-prefix"]: c for c in containers(staging)
    }
    assert by_service["web"]["image"] == by_service["worker"]["image"]
    assert "command" not in by_service["web"]
    assert by_service["worker"]["command"] == ["python", "-m", "openapi_server.worker"]
    assert (
        _env(staging, "web")["QUEUE_BACKEND"]
        == _env(staging, "worker")["QUEUE_BACKEND"]
        == "celery"
    )
    assert _env(staging, "worker")["WORKER_POOL"] == "threads"
    health = by_service["worker"]["healthCheck"]["command"]
    assert health == ["CMD", "python", "-m", "openapi_server.healthcheck", "--worker"]
    assert "healthCheck" not in by_service["web"], "the load balancer probes the web service"
    # Longer than an SES call's 30 s timeout: scale-in never cuts a send in half.
    assert by_service["worker"]["stopTimeout"] == by_service["web"]["stopTimeout"] == 60


def test_autoscaling_web_on_cpu_and_worker_on_backlog(staging: Deployment) -> None:
    targets = {r.name: r for r in staging.of_type("aws:appautoscaling/target:Target")}
    assert targets["web-scaling"].get("minCapacity") == 2
    assert targets["web-scaling"].get("maxCapacity") == 4
    assert targets["worker-scaling"].get("maxCapacity") == 4
    policies = {r.name: r for r in staging.of_type("aws:appautoscaling/policy:Policy")}
    cpu = policies["web-cpu"].get("targetTrackingScalingPolicyConfiguration")
    assert (
        cpu["predefinedMetricSpecification"]["predefinedMetricType"]
        == "ECSServiceAverageCPUUtilization"
    )
    backlog = policies["worker-backlog"].get("targetTrackingScalingPolicyConfiguration")
    metrics = {m["id"]: m for m in backlog["customizedMetricSpecification"]["metrics"]}
    assert metrics["backlog"]["metricStat"]["metric"]["namespace"] == "ColdReach/staging"
    assert metrics["per_task"]["returnData"] is True
    assert _env(staging, "worker")["BACKLOG_METRIC_NAMESPACE"] == "ColdReach/staging"
    for name in ("web", "worker"):
        assert "desiredCount" in _service(staging, name).ignore_changes
    worker_policy = next(
        r for r in staging.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "worker-task"
    )
    [statement] = policy_statements(worker_policy.get("policy"))
    assert statement["Action"] == ["cloudwatch:PutMetricData"]
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ColdReach/staging"}}


def test_prod_is_highly_available(prod: Deployment) -> None:
    primary = next(
        r for r in prod.of_type("aws:rds/instance:Instance") if not r.get("replicateSourceDb")
    )
    assert primary.get("multiAz") is True
    [redis] = prod.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert redis.get("numCacheClusters") >= 2
    assert redis.get("automaticFailoverEnabled") is True and redis.get("multiAzEnabled") is True
    [alb] = prod.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert alb.get("enableDeletionProtection") is True


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_pools_fit_under_max_connections_at_maximum_scale(program, stack: str) -> None:
    d = program(stack, phase=2)
    max_tasks = {
        t.get("resourceId").rsplit("/", 1)[1]: t.get("maxCapacity")
        for t in d.of_type("aws:appautoscaling/target:Target")
    }
    instances = d.of_type("aws:rds/instance:Instance")
    primary = next(r for r in instances if not r.get("replicateSourceDb"))
    replica = next(r for r in instances if r.get("replicateSourceDb"))
    used = {"primary": 0, "replica": 0}
    for service in d.of_type("aws:ecs/service:Service"):
        env = _env(d, d.resolve(service.get("taskDefinition")).id.rsplit("-", 1)[1])
        per_task = int(env["DB_POOL_SIZE"]) + int(env["DB_MAX_OVERFLOW"])
        tasks = max_tasks[service.out("name")]
        used["primary"] += tasks * per_task
        if "DB_READ_HOST" in env and service.name == "web-service":
            used["replica"] += tasks * per_task
    assert used["primary"] <= capacity.usable_connections(primary.get("instanceClass"))
    assert used["replica"] <= capacity.usable_connections(replica.get("instanceClass"))
    assert used["primary"] > 0 and used["replica"] > 0


def test_private_services_wait_for_the_way_out_and_the_redis_url(staging: Deployment) -> None:
    nat_routes = {r.urn for r in staging.of_type("aws:ec2/route:Route") if r.get("natGatewayId")}
    url_value = next(
        r.urn
        for r in staging.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if r.name == "cache-url"
    )
    for name in ("web", "worker"):
        deps = set(_service(staging, name).dependencies)
        assert nat_routes <= deps and url_value in deps, name
    backlog = next(
        r for r in staging.of_type("aws:appautoscaling/policy:Policy") if r.name == "worker-backlog"
    )
    spec = backlog.get("targetTrackingScalingPolicyConfiguration")["customizedMetricSpecification"]
    [expression] = [m["expression"] for m in spec["metrics"] if "expression" in m]
    assert expression == "backlog / tasks"
