"""Who can reach whom in phase 1, followed through the graph by id."""

from __future__ import annotations

import json

from deployment_helpers import containers, policy_statements, service_containers, task_definition

from coldreach import graph
from coldreach.runtime import Deployment


def _group_of(deployment: Deployment, component: str):
    return deployment.named(f"{component}-sg")


def test_database_admits_only_the_web_service_on_5432(dev: Deployment) -> None:
    db = dev.of_type("aws:rds/instance:Instance")[0]
    [db_sg] = graph.security_groups_of(dev, db)
    web_service = dev.of_type("aws:ecs/service:Service")[0]
    [web_sg] = graph.security_groups_of(dev, web_service)

    rules = graph.ingress(dev, db_sg.id)
    assert len(rules) == 1
    [rule] = rules
    assert rule.source_group == web_sg.id
    assert (rule.port_from, rule.port_to, rule.protocol) == (5432, 5432, "tcp")
    assert rule.cidr is None
    assert db_sg.get("ingress") is None, "no inline rules on the database group"


def test_only_the_alb_is_open_to_the_world_and_only_on_80_and_443(dev: Deployment) -> None:
    alb = dev.of_type("aws:lb/loadBalancer:LoadBalancer")[0]
    [alb_sg] = graph.security_groups_of(dev, alb)
    world = [i for i in graph.ingress(dev) if i.from_world]
    assert {i.group_id for i in world} == {alb_sg.id}
    assert sorted((i.port_from, i.port_to) for i in world) == [(80, 80), (443, 443)]
    assert not [i for i in graph.ingress(dev) if i.cidr and not i.from_world]


def test_web_tasks_admit_only_the_alb_on_the_app_port(dev: Deployment) -> None:
    alb = dev.of_type("aws:lb/loadBalancer:LoadBalancer")[0]
    [alb_sg] = graph.security_groups_of(dev, alb)
    service = dev.of_type("aws:ecs/service:Service")[0]
    [web_sg] = graph.security_groups_of(dev, service)
    [rule] = graph.ingress(dev, web_sg.id)
    assert rule.source_group == alb_sg.id and rule.port_from == rule.port_to == 8000
    # Phase 1 has no NAT: tasks sit in public subnets with a public IP, which the
    # rule above keeps unreachable from anywhere but the load balancer.
    net = service.get("networkConfiguration")
    assert net["assignPublicIp"] is True
    assert all(dev.by_id(s).get("tags")["tier"] == "public" for s in net["subnets"])


def test_every_rule_and_group_has_a_description(dev: Deployment) -> None:
    for r in (
        dev.of_type(graph.SECURITY_GROUP) + dev.of_type(graph.INGRESS) + dev.of_type(graph.EGRESS)
    ):
        assert r.get("description"), r.name


def test_egress_is_limited_to_what_each_tier_needs(dev: Deployment) -> None:
    egress = {
        (dev.by_id(r.get("securityGroupId")).name, r.get("fromPort"), r.get("cidrIpv4"))
        for r in dev.of_type(graph.EGRESS)
    }
    assert egress == {
        ("edge-sg", 8000, None),
        ("web-sg", 5432, None),
        ("web-sg", 443, "0.0.0.0/0"),
    }


def test_database_is_private_encrypted_backed_up_and_protected(dev: Deployment) -> None:
    [db] = dev.of_type("aws:rds/instance:Instance")
    assert db.get("publiclyAccessible") is False
    assert db.get("storageEncrypted") is True
    assert db.get("backupRetentionPeriod") >= 7
    assert db.get("deletionProtection") is True
    assert db.get("skipFinalSnapshot") is False and db.get("finalSnapshotIdentifier")
    assert db.protect is True
    assert db.get("engine") == "postgres" and db.get("engineVersion").startswith("16")
    assert db.get("performanceInsightsEnabled") is True
    assert set(db.get("enabledCloudwatchLogsExports")) == {
        "postgresql",
        "upgrade",
        "iam-db-auth-error",
    }
    # The replica of phase 2 needs a password RDS does not manage.
    assert not db.get("manageMasterUserPassword")
    assert "identifier" not in db.inputs, "autonamed, so a replacement can never collide"
    subnets = dev.by_id(db.get("dbSubnetGroupName")).get("subnetIds")
    assert {dev.by_id(s).get("tags")["tier"] for s in subnets} == {"private"}
    params = dev.by_id(db.get("parameterGroupName")).get("parameters")
    assert {p["name"]: p["value"] for p in params}["rds.force_ssl"] == "1"


def test_stateful_resources_are_protected(dev: Deployment) -> None:
    stateful = graph.stateful(dev)
    assert {r.type for r in stateful} == {
        "aws:rds/instance:Instance",
        "aws:ecr/repository:Repository",
        "aws:s3/bucket:Bucket",
        "aws:secretsmanager/secret:Secret",
    }
    assert all(r.protect for r in stateful), [r.name for r in stateful if not r.protect]


def test_secrets_never_reach_task_environment_or_plain_outputs(dev: Deployment) -> None:
    generated = [r.out("result") for r in dev.of_type("random:index/randomPassword:RandomPassword")]
    assert len(generated) == 2 and all(generated)
    for td in dev.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        document = td.get("containerDefinitions")
        # A secret flowing into the document would taint all of it.
        assert not isinstance(td.inputs["containerDefinitions"], dict), "tainted by a secret"
        assert not any(value in document for value in generated)
    secret_arns = {r.out("arn") for r in dev.of_type("aws:secretsmanager/secret:Secret")}
    for container in containers(dev):
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert not set(env) & {"DB_PASSWORD", "UNSUBSCRIBE_SECRET", "DATABASE_URL"}
        # A user name in the environment only where it signs in with an IAM token.
        assert "DB_USER" not in env or env.get("DB_IAM_AUTH") == "1"
        injected = {s["name"]: s["valueFrom"] for s in container["secrets"]}
        for value_from in injected.values():
            assert value_from.split(":password::")[0].split(":username::")[0] in secret_arns
    [web] = service_containers(dev)
    assert {s["name"] for s in web["secrets"]} == {"DB_USER", "DB_PASSWORD", "UNSUBSCRIBE_SECRET"}
    plain_outputs = json.dumps(dev.outputs)
    assert not any(value in plain_outputs for value in generated)


def test_task_runs_non_root_on_a_read_only_root_filesystem(dev: Deployment) -> None:
    td = task_definition(dev, "web")
    assert td.get("volumes") == [{"name": "tmp"}]
    assert td.get("networkMode") == "awsvpc" and td.get("requiresCompatibilities") == ["FARGATE"]
    [container] = service_containers(dev)
    assert container["readonlyRootFilesystem"] is True
    assert container["user"] == "10001:10001"
    assert container["privileged"] is False
    assert container["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    logs = container["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    group = dev.by_id(logs["options"]["awslogs-group"])
    assert group.get("retentionInDays") == 30
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["QUEUE_BACKEND"] == "inline"
    assert env["DB_HOST"] == dev.of_type("aws:rds/instance:Instance")[0].out("address")


def test_roles_are_least_privilege(dev: Deployment) -> None:
    for role in dev.of_type("aws:iam/role:Role"):
        trust = policy_statements(role.get("assumeRolePolicy"))
        assert all(s["Principal"] != "*" and "Service" in s["Principal"] for s in trust)
    for policy in dev.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_statements(policy.get("policy")):
            assert "*" not in statement["Action"]
            if "*" in statement["Resource"]:
                # ECR's token call has no resource-level permission.
                assert statement["Action"] == ["ecr:GetAuthorizationToken"], statement
    td = task_definition(dev, "web")
    assert td.get("taskRoleArn") != td.get("executionRoleArn")
    execution = next(
        p for p in dev.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "web-execution"
    )
    reads = [
        s
        for s in policy_statements(execution.get("policy"))
        if s["Action"] == ["secretsmanager:GetSecretValue"]
    ]
    secret_arns = {r.out("arn") for r in dev.of_type("aws:secretsmanager/secret:Secret")}
    assert len(reads) == 1 and set(reads[0]["Resource"]) == secret_arns
    # Without a sender domain the app may do nothing in AWS.
    assert not [p for p in dev.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "web-task"]


def test_registry_scans_and_keeps_tags_immutable(dev: Deployment) -> None:
    [repo] = dev.of_type("aws:ecr/repository:Repository")
    assert repo.get("imageTagMutability") == "IMMUTABLE"
    assert repo.get("imageScanningConfiguration") == {"scanOnPush": True}
    [lifecycle] = dev.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle.get("repository") == repo.id
    assert len(json.loads(lifecycle.get("policy"))["rules"]) == 2


def test_alb_drops_invalid_headers_and_logs_to_a_private_bucket(dev: Deployment) -> None:
    [alb] = dev.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert alb.get("dropInvalidHeaderFields") is True
    assert alb.get("internal") is False
    assert alb.get("enableDeletionProtection") is False  # dev; prod turns it on
    logs = alb.get("accessLogs")
    bucket = dev.by_id(logs["bucket"])
    assert logs["enabled"] is True and bucket.type == "aws:s3/bucket:Bucket"
    [block] = dev.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.get("bucket") == bucket.id
    assert all(
        block.get(k)
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    [listener] = dev.of_type("aws:lb/listener:Listener")
    assert listener.get("protocol") == "HTTP"
    assert listener.get("defaultActions")[0]["type"] == "forward"
    assert dev.output("url").startswith("http://")
