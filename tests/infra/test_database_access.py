"""Database access without static passwords (cold-reach:dbIamAuth): the services sign in
with RDS IAM tokens as the DML-only role, the one-off tasks bootstrap the roles and
migrate as the owner, and the master password rotates; an existing stack gets there in
stages without losing anything stateful."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deployment_helpers import policy_statements, service_containers, task_definition

from coldreach import graph, policy_eval
from coldreach.replacement import compare, forced_replacements
from coldreach.runtime import Deployment
from infra import topology
from infra.config import ConfigError, parse

STAGES = ("off", "roles", "services", "on")
ROOT = Path(__file__).resolve().parents[2]


def _container(d: Deployment, name: str) -> dict[str, Any]:
    [container] = json.loads(task_definition(d, name).get("containerDefinitions"))
    return container


def _env(d: Deployment, name: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(d, name)["environment"]}


def _secrets(d: Deployment, name: str) -> set[str]:
    return {s["name"] for s in _container(d, name)["secrets"]}


def _role_statements(d: Deployment, role_arn: str) -> list[dict[str, Any]]:
    role = next(r for r in d.of_type("aws:iam/role:Role") if r.out("arn") == role_arn)
    return [
        s
        for p in d.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.get("role") == role.id
        for s in policy_statements(p.get("policy"))
    ]


def _connect_resources(d: Deployment, task: str, role: str = "taskRoleArn") -> list[str]:
    statements = _role_statements(d, task_definition(d, task).get(role))
    return [r for s in statements if s["Action"] == ["rds-db:connect"] for r in s["Resource"]]


def _secret_reads(d: Deployment, task: str) -> set[str]:
    statements = _role_statements(d, task_definition(d, task).get("executionRoleArn"))
    return {
        r
        for s in statements
        if s["Action"] == ["secretsmanager:GetSecretValue"]
        for r in s["Resource"]
    }


def _dbuser(d: Deployment, instance: str, user: str) -> str:
    db = d.named(instance)
    region, account = db.out("arn").split(":")[3:5]
    return f"arn:aws:rds-db:{region}:{account}:dbuser:{db.out('resourceId')}/{user}"


@pytest.fixture(scope="module")
def staging_on(program: Callable[..., Deployment]) -> Deployment:
    return program("staging", dbIamAuth="on")


@pytest.fixture(scope="module")
def dev_on(program: Callable[..., Deployment]) -> Deployment:
    return program("dev", dbIamAuth="on")


def test_a_new_stack_starts_with_iam_and_existing_ones_are_pinned_to_a_stage() -> None:
    assert parse("new", {}.get, "us-east-1").database.iam_auth == "on"
    with pytest.raises(ConfigError, match=r"cold-reach:dbIamAuth = 'yes' is not allowed: off, "):
        parse("new", {"dbIamAuth": "yes"}.get, "us-east-1")
    for stack in ("dev", "staging", "prod"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        assert "cold-reach:dbIamAuth: roles" in text, stack


def test_each_service_may_connect_exactly_as_the_app_role_where_it_reaches(
    staging_on: Deployment,
) -> None:
    d = staging_on
    app = "coldreach_app"
    # The web reads lists from the replica, which has a resource id of its own.
    assert _connect_resources(d, "web") == [
        _dbuser(d, "db-instance", app),
        _dbuser(d, "db-replica", app),
    ]
    assert _connect_resources(d, "worker") == [_dbuser(d, "db-instance", app)]
    assert _dbuser(d, "db-instance", app) != _dbuser(d, "db-replica", app)
    for service in ("web", "worker"):
        for arn in _connect_resources(d, service):
            assert "*" not in arn and arn.endswith(f"/{app}")


def test_services_sign_in_with_tokens_and_hold_no_database_password(
    staging_on: Deployment,
) -> None:
    d = staging_on
    master = d.output("db_secret_arn")
    for service in ("web", "worker"):
        env = _env(d, service)
        assert env["DB_IAM_AUTH"] == "1" and env["DB_USER"] == "coldreach_app"
        assert env["AUTO_MIGRATE"] == "0", "the app role cannot create tables"
        assert not {"DB_USER", "DB_PASSWORD"} & _secrets(d, service)
        assert master not in _secret_reads(d, service)
    for container in service_containers(d):
        assert all(master not in s["valueFrom"] for s in container["secrets"])


def test_bootstrap_is_the_only_task_that_reads_the_master_secret(staging_on: Deployment) -> None:
    d = staging_on
    master = d.output("db_secret_arn")
    readers = {
        td.get("family").rsplit("-", 1)[-1]
        for td in d.of_type("aws:ecs/taskDefinition:TaskDefinition")
        if master in _secret_reads(d, td.get("family").rsplit("-", 1)[-1])
    }
    assert readers == {"bootstrap"}
    container = _container(d, "bootstrap")
    assert container["command"] == ["python", "-m", "openapi_server.bootstrap_db"]
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {
        "DB_USER": f"{master}:username::",
        "DB_PASSWORD": f"{master}:password::",
    }
    env = _env(d, "bootstrap")
    assert env["DB_OWNER_USER"] == "coldreach_owner" and env["DB_APP_USER"] == "coldreach_app"
    assert "DB_IAM_AUTH" not in env
    # It may do nothing in AWS itself.
    assert _role_statements(d, task_definition(d, "bootstrap").get("taskRoleArn")) == []


def test_migrate_runs_as_the_schema_owner_with_a_token(staging_on: Deployment) -> None:
    d = staging_on
    container = _container(d, "migrate")
    assert container["command"] == ["python", "-m", "openapi_server.migrate"]
    env = _env(d, "migrate")
    assert env["DB_IAM_AUTH"] == "1" and env["DB_USER"] == "coldreach_owner"
    assert env["DB_HOST"] == d.named("db-instance").out("address")
    assert _secrets(d, "migrate") == set()
    assert _connect_resources(d, "migrate") == [_dbuser(d, "db-instance", "coldreach_owner")]
    # One-off: no service runs them, and they are the same hardened container.
    run = {s.get("taskDefinition") for s in d.of_type("aws:ecs/service:Service")}
    for name in ("bootstrap", "migrate"):
        td = task_definition(d, name)
        assert td.out("arn") not in run
        assert d.output(f"db_{name}_task_arn") == td.out("arn")
        c = _container(d, name)
        assert c["user"] == "10001:10001" and c["readonlyRootFilesystem"] is True


def test_the_run_task_commands_name_the_apis_subnets_and_group(
    staging_on: Deployment, dev_on: Deployment
) -> None:
    for d, subnets, public in ((staging_on, "private", "DISABLED"), (dev_on, "public", "ENABLED")):
        network = d.output("db_task_network")
        web = d.named("web-service").get("networkConfiguration")
        assert network["securityGroups"] == web["securityGroups"]
        assert network["subnets"] == web["subnets"]
        assert {d.by_id(s).get("tags")["tier"] for s in network["subnets"]} == {subnets}
        assert network["assignPublicIp"] == public
        command = d.output("db_task_commands")["bootstrap"]
        assert command.startswith(
            f"aws ecs run-task --cluster {d.output('cluster_name')} --launch-type FARGATE "
            f"--task-definition {d.output('db_bootstrap_task_arn')} "
        )
        assert (
            f"subnets=[{','.join(network['subnets'])}],"
            f"securityGroups=[{network['securityGroups'][0]}],assignPublicIp={public}"
        ) in command


def test_rotation_is_wired_and_the_program_never_undoes_it(staging_on: Deployment) -> None:
    d = staging_on
    master = d.output("db_secret_arn")
    [rotation] = d.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    [function] = d.of_type("aws:lambda/function:Function")
    assert rotation.get("secretId") == master
    assert rotation.get("rotationLambdaArn") == function.out("arn")
    assert rotation.get("rotationRules") == {"automaticallyAfterDays": 30}
    [permission] = d.of_type("aws:lambda/permission:Permission")
    assert permission.get("principal") == "secretsmanager.amazonaws.com"
    assert permission.get("sourceArn") == master and permission.urn in rotation.dependencies
    # The first rotation starts at once, so only after the function's paths are open.
    rotation_sg = d.named("db-rotation-sg").id
    paths = [
        r
        for r in d.of_type(graph.INGRESS) + d.of_type(graph.EGRESS)
        if rotation_sg in (r.get("securityGroupId"), r.get("referencedSecurityGroupId"))
    ]
    assert len(paths) == 4 and {r.urn for r in paths} <= set(rotation.dependencies)
    # Rotation owns the password: `pulumi up` must not set the generated one back.
    assert "password" in d.named("db-instance").ignore_changes
    [version] = [
        v
        for v in d.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if v.name == "db-credentials"
    ]
    assert version.ignore_changes == ["secretString"]
    # The function: in the private subnets, Secrets Manager through the endpoint only.
    vpc = function.get("vpcConfig")
    assert {d.by_id(s).get("tags")["tier"] for s in vpc["subnetIds"]} == {"private"}
    [endpoint] = d.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.get("privateDnsEnabled") is False
    assert endpoint.get("serviceName") == "com.amazonaws.us-east-1.secretsmanager"
    url = function.get("environment")["variables"]["SECRETS_MANAGER_ENDPOINT"]
    assert url == "https://" + endpoint.out("dnsEntries")[0]["dnsName"]
    # Its role names the one secret it rotates.
    statements = _role_statements(d, function.get("role"))
    secret_statements = [s for s in statements if "secretsmanager:PutSecretValue" in s["Action"]]
    assert [s["Resource"] for s in secret_statements] == [[master]]
    for s in statements:
        if "*" in s["Resource"]:
            assert set(s["Action"]) == {
                "secretsmanager:GetRandomPassword",
                "ec2:DescribeNetworkInterfaces",
            }
    # The archive holds the handler and the driver.
    code = function.get("code")["archive"]
    assert code.startswith("var/build/db-rotation-") and code.endswith(".zip")


def test_the_topology_admits_the_rotation_to_the_database_and_nothing_else_new(
    staging_on: Deployment, program: Callable[..., Deployment]
) -> None:
    services = program("staging", dbIamAuth="services")
    before = {(f["from"], f["to"], f["port"]) for f in services.output("topology")["flows"]}
    after = {(f["from"], f["to"], f["port"]) for f in staging_on.output("topology")["flows"]}
    assert after - before == {
        (topology.ROTATION, "database", 5432),
        (topology.ROTATION, topology.SECRETS_ENDPOINT, 443),
    }
    assert before <= after
    assert staging_on.output("topology")["tiers"]["database"]["admits"] == [
        "web", "worker", topology.ROTATION
    ]  # fmt: skip
    # Every rule between groups is a declared flow, the rotation's included; the
    # function has no way out to the internet.
    assert graph.undeclared_ingress(staging_on) == []
    rotation_sg = staging_on.named("db-rotation-sg")
    egress = [
        r for r in staging_on.of_type(graph.EGRESS) if r.get("securityGroupId") == rotation_sg.id
    ]
    assert sorted(
        (graph.node_of(staging_on, r.get("referencedSecurityGroupId")), r.get("fromPort"))
        for r in egress
    ) == [("database", 5432), (topology.SECRETS_ENDPOINT, 443)]
    assert all(not r.get("cidrIpv4") for r in egress)


def test_the_stages_change_only_what_they_say(program: Callable[..., Deployment]) -> None:
    by_stage = {stage: program("staging", dbIamAuth=stage) for stage in STAGES}
    master = by_stage["off"].output("db_secret_arn")
    # off: no one-off tasks, the services on the master credentials.
    assert "db_bootstrap_task_arn" not in by_stage["off"].outputs
    # roles: the tasks exist, the services are untouched.
    off_web, roles_web = (_container(by_stage[s], "web") for s in ("off", "roles"))
    assert off_web == roles_web
    assert by_stage["roles"].output("db_bootstrap_task_arn")
    # services: tokens, yet the execution roles may still read the master secret, so
    # ECS's rollback to the password revision can start.
    services = by_stage["services"]
    assert _env(services, "web")["DB_IAM_AUTH"] == "1"
    assert "DB_PASSWORD" not in _secrets(services, "web")
    assert master in _secret_reads(services, "web") and master in _secret_reads(services, "worker")
    assert not services.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    # on: the secret is closed to them and rotates.
    on = by_stage["on"]
    assert master not in _secret_reads(on, "web")
    assert on.of_type("aws:secretsmanager/secretRotation:SecretRotation")


TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


def test_promotion_through_the_stages_keeps_every_stateful_resource(
    program: Callable[..., Deployment],
) -> None:
    for stack in ("dev", "staging"):
        stages = [program(stack, dbIamAuth=stage) for stage in STAGES]
        for before, after in itertools.pairwise(stages):
            # A stage may give a task a new revision (a replaced task definition); it never
            # replaces or deletes anything stateful.
            steps = compare(before, after)
            assert [s.reason() for s in steps if s.blocking] == []
            assert {s.resource.type for s in steps if s.destructive} <= {TASK_DEFINITION}
            for r in graph.stateful(before):
                promoted = after.by_urn(r.urn)
                assert promoted.id == r.id and promoted.protect
                assert forced_replacements(r, promoted) == ()
        # Phase 1 to 2 at the last stage, as a new stack would be promoted.
        first, second = program(stack, 1, dbIamAuth="on"), program(stack, 2, dbIamAuth="on")
        assert [s.reason() for s in compare(first, second) if s.blocking] == []
        assert {r.urn for r in graph.stateful(first)} <= {r.urn for r in second}


def test_the_rotated_stack_passes_the_policy_pack(staging_on: Deployment) -> None:
    from coldreach.policy_eval import evaluate

    findings = evaluate(staging_on)
    assert not [f for f in findings if f.policy == "rds-credentials-rotation"]
    mandatory = [f for f in findings if f.enforcement == "mandatory"]
    assert mandatory == [], mandatory


def test_a_failed_rotation_step_alarms(staging_on: Deployment, dev_on: Deployment) -> None:
    [function] = staging_on.of_type("aws:lambda/function:Function")
    [alarm] = [a for a in staging_on.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
               if a.get("namespace") == "AWS/Lambda"]  # fmt: skip
    assert alarm.get("metricName") == "Errors" and alarm.get("threshold") == 0
    assert alarm.get("dimensions") == {"FunctionName": function.out("name")}
    assert alarm.get("alarmActions") == [staging_on.output("alerts_topic_arn")]
    # Phase 1 has no alerts topic yet (it comes with the worker's metrics).
    assert not dev_on.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")


# --- phase 3: every database the pods sign in to -------------------------------------------

PHASE3_BOOTSTRAPS = ("bootstrap-shard-1", "bootstrap-directory", "bootstrap-shard-2",
                     "bootstrap-shard-3")  # fmt: skip


def _master_secret(d: Deployment, instance: str) -> str:
    """The credentials secret of the instance named `<prefix>-instance` (`db`, `shard2`...)."""
    prefix = instance.removesuffix("-instance")
    [secret] = [
        r.out("arn")
        for r in d.of_type("aws:secretsmanager/secret:Secret")
        if r.name == f"{prefix}-credentials"
    ]
    return secret


def _pod_databases(d: Deployment) -> set[tuple[str, str]]:
    """(host, database) of every DB_SHARD_<n> and DB_DIRECTORY URL a pod gets."""
    found: set[tuple[str, str]] = set()
    for deployment in d.of_type("kubernetes:apps/v1:Deployment"):
        for container in deployment.get("spec")["template"]["spec"]["containers"]:
            for e in container.get("env", []):
                if e["name"] == "DB_DIRECTORY" or (
                    e["name"].startswith("DB_SHARD_") and not e["name"].endswith("_SECRET_ARN")
                ):
                    host_port, database = e["value"].rsplit("@", 1)[-1].split("/", 1)
                    found.add((host_port.split(":")[0], database))
    return found


@pytest.fixture(scope="module")
def phase3_on(program: Callable[..., Deployment]) -> Deployment:
    return program("staging", 3, shards="3", dbIamAuth="on")


def test_each_phase3_database_is_bootstrapped_once_with_its_own_instances_master_secret(
    phase3_on: Deployment,
) -> None:
    d = phase3_on
    names = [
        td.get("family").removeprefix("cold-reach-staging-") for td in d.of_type(TASK_DEFINITION)
    ]
    bootstrap_db = ["python", "-m", "openapi_server.bootstrap_db"]
    bootstraps = {name for name in names if _container(d, name).get("command") == bootstrap_db}
    assert bootstraps == {"bootstrap", *PHASE3_BOOTSTRAPS}
    expected = {
        "bootstrap-shard-1": ("db-instance", "coldreach_shard1"),
        "bootstrap-directory": ("db-instance", "coldreach_directory"),
        "bootstrap-shard-2": ("shard2-instance", "coldreach"),
        "bootstrap-shard-3": ("shard3-instance", "coldreach"),
    }
    targets: list[tuple[str, str]] = []
    for name, (instance, database) in expected.items():
        env = _env(d, name)
        assert (env["DB_HOST"], env["DB_NAME"]) == (d.named(instance).out("address"), database)
        targets.append((env["DB_HOST"], env["DB_NAME"]))
        assert env["DB_OWNER_USER"] == "coldreach_owner" and env["DB_APP_USER"] == "coldreach_app"
        assert "DB_IAM_AUTH" not in env
        # The master user of its own instance, and no other secret readable.
        master = _master_secret(d, instance)
        assert {s["name"]: s["valueFrom"] for s in _container(d, name)["secrets"]} == {
            "DB_USER": f"{master}:username::",
            "DB_PASSWORD": f"{master}:password::",
        }
        assert _secret_reads(d, name) == {master}
        assert _role_statements(d, task_definition(d, name).get("taskRoleArn")) == []
        # An operator runs it like the others.
        assert d.output(f"db_{name}_task_arn") == task_definition(d, name).out("arn")
        assert (
            f"--task-definition {d.output(f'db_{name}_task_arn')} "
            in (d.output("db_task_commands")[name])
        )
    # Exactly one task per database, and together exactly the databases the pods use.
    assert len(set(targets)) == len(targets)
    assert set(targets) == _pod_databases(d)
    # The phase-2 database keeps its own bootstrap, which alone reads nothing but its secret.
    assert (_env(d, "bootstrap")["DB_HOST"], _env(d, "bootstrap")["DB_NAME"]) == (
        d.named("db-instance").out("address"),
        "coldreach",
    )
    assert _secret_reads(d, "bootstrap") == {_master_secret(d, "db-instance")}


def test_only_the_bootstrap_tasks_read_a_master_secret_in_phase3(phase3_on: Deployment) -> None:
    d = phase3_on
    masters = {_master_secret(d, i) for i in ("db-instance", "shard2-instance", "shard3-instance")}
    names = [
        td.get("family").removeprefix("cold-reach-staging-") for td in d.of_type(TASK_DEFINITION)
    ]
    readers = {name for name in names if masters & _secret_reads(d, name)}
    assert readers == {"bootstrap", *PHASE3_BOOTSTRAPS}
    findings = [f for f in policy_eval.evaluate(d) if f.enforcement == "mandatory"]
    assert findings == [], findings


def test_phase2_has_no_shard_bootstrap_and_retiring_ecs_retires_them(
    program: Callable[..., Deployment],
) -> None:
    phase2 = program("staging", dbIamAuth="on")
    assert set(phase2.output("db_task_commands")) == {"bootstrap", "migrate"}
    retired = program("staging", 3, retireEcs="true", eksTrafficPercent="100")
    assert "db_task_commands" not in retired.outputs
    assert not [k for k in retired.outputs if k.startswith("db_bootstrap")]
