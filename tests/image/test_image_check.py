"""What `make image-check` runs: every app task definition (ECS) and app Deployment (EKS)
the plan renders, as the orchestrator would start it."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from image_check import (
    ImageConfig,
    LocalServices,
    Mount,
    Sandbox,
    ShardedServices,
    Task,
    tasks_from_plan,
    workloads_from_plan,
)

from coldreach.evaluation import evaluate_stack


def test_staging_plan_yields_web_and_worker_as_ecs_runs_them() -> None:
    tasks = {t.name: t for t in tasks_from_plan(evaluate_stack("staging", None).to_json())}
    # The services, and the database's one-off tasks (cold-reach:dbIamAuth roles).
    assert set(tasks) == {"web-task", "worker-task", "bootstrap-task", "migrate-task"}
    assert {t.name for t in tasks.values() if t.one_off} == {"bootstrap-task", "migrate-task"}
    for task in tasks.values():
        assert task.user == "10001:10001"
        assert task.read_only_root and task.tmp_volume
    web, worker = tasks["web-task"], tasks["worker-task"]
    assert web.port == 8000 and web.command is None, "the web task runs the image's CMD"
    assert worker.command == ["python", "-m", "openapi_server.worker"]
    assert worker.health_command == ["python", "-m", "openapi_server.healthcheck", "--worker"]


def test_local_values_replace_the_data_tier_and_every_secret() -> None:
    [worker] = [
        t for t in tasks_from_plan(evaluate_stack("staging", None).to_json())
        if t.name == "worker-task"
    ]  # fmt: skip
    local = LocalServices("db_x", 18000, "q", secrets.token_hex(8))
    env = local.environment(worker)
    assert env["DB_HOST"] == "127.0.0.1" and env["DB_NAME"] == "db_x"
    assert env.get("DB_READ_HOST", "127.0.0.1") == "127.0.0.1"
    assert set(worker.secrets) <= set(env) and env["REDIS_URL"].startswith("redis://127.0.0.1")
    assert env["CELERY_QUEUE"] == "q", "a queue of its own on the shared Redis"
    assert env["QUEUE_BACKEND"] == "celery", "everything else is the task's own setting"


def test_token_tasks_sign_in_locally_as_the_same_user_without_a_token() -> None:
    """The local PostgreSQL has no TLS, which a token needs; the role grants still count."""
    plan = evaluate_stack("staging", None, overrides={"cold-reach:dbIamAuth": "on"}).to_json()
    tasks = {t.name: t for t in tasks_from_plan(plan)}
    local = LocalServices("db_x", 18000, "q", secrets.token_hex(8))
    migrate, web = local.environment(tasks["migrate-task"]), local.environment(tasks["web-task"])
    assert migrate["DB_USER"] == "coldreach_owner" and migrate["DB_IAM_AUTH"] == "0"
    assert web["DB_USER"] == "coldreach_app" and web["AUTO_MIGRATE"] == "0"
    bootstrap = local.environment(tasks["bootstrap-task"])
    assert bootstrap["DB_USER"] == "postgres", "the master credentials: the local superuser"
    assert tasks["bootstrap-task"].command == ["python", "-m", "openapi_server.bootstrap_db"]


def _phase3() -> dict[str, Any]:
    return evaluate_stack("staging", 3).to_json()


def test_phase3_runs_every_app_deployment_as_the_kubelet_would() -> None:
    workloads = {w.name: w for w in workloads_from_plan(_phase3())}
    # Jaeger's Deployment runs another image: not this image's to check.
    assert set(workloads) == {"api", "clients", "campaigns", "sender"}
    for w in workloads.values():
        assert w.user == "10001:10001", "runAsUser:runAsGroup of the pod"
        assert w.read_only_root and w.tmp_volume
        # The kubelet's emptyDir: empty, 0777 with the fsGroup's setgid, sizeLimit 64Mi.
        assert w.empty_dirs == [Mount("/tmp", "mode=2777,uid=0,gid=10001,size=64m")]
    assert workloads["clients"].command == ["coldreach-app", "serve-clients"]
    assert workloads["clients"].probe is not None and "grpc" in workloads["clients"].probe
    assert workloads["api"].probe == {"httpGet": {"path": "/healthz", "port": 8000},
                                      "periodSeconds": 10}  # fmt: skip
    assert workloads["sender"].port is None and workloads["sender"].probe is not None
    assert "exec" in workloads["sender"].probe


def test_phase3_aws_values_become_local_ones_and_nothing_aws_is_left() -> None:
    workloads = {w.name: w for w in workloads_from_plan(_phase3())}
    ports = {"api": 18000, "clients": 18001, "campaigns": 18002}
    local = ShardedServices("dir_x", ["s1_x", "s2_x"], "127.0.0.1:9092", ports, "t" * 32)
    campaigns = local.environment(workloads["campaigns"])
    assert campaigns["DB_SHARD_1"] == "postgresql://postgres@127.0.0.1:5432/s1_x"
    assert campaigns["DB_SHARD_2"] == "postgresql://postgres@127.0.0.1:5432/s2_x"
    assert campaigns["DB_DIRECTORY"] == "postgresql://postgres@127.0.0.1:5432/dir_x"
    assert campaigns["CLIENT_SERVICE_ADDR"] == "dns:///127.0.0.1:18001"
    assert campaigns["GRPC_PORT"] == "18002"
    assert campaigns["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert campaigns["KAFKA_AUTH"] == "none" and campaigns["QUEUE_BACKEND"] == "kafka"
    assert not any(k.endswith("_SECRET_ARN") for k in campaigns)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in campaigns
    sender = local.environment(workloads["sender"])
    assert sender["MAILER"] == "console" and sender["UNSUBSCRIBE_SECRET"] == "t" * 32
    assert sender["KAFKA_GROUP_ID"] == "sender", "everything else is the pod's own setting"
    api = local.environment(workloads["api"])
    assert api["PORT"] == "18000" and api["PUBLIC_BASE_URL"] == "http://127.0.0.1:18000"
    assert (local.args(workloads["api"]) or [])[-2:] == ["--port", "18000"]
    for env in (campaigns, sender, api):
        assert not [v for v in env.values() if "amazonaws.com" in v or "arn:aws:" in v]


def test_phase3_with_iam_sign_in_keeps_the_user_without_a_token() -> None:
    plan = evaluate_stack("staging", 3, overrides={"cold-reach:dbIamAuth": "on"}).to_json()
    [clients] = [w for w in workloads_from_plan(plan) if w.name == "clients"]
    env = ShardedServices("d", ["a", "b"], "k", {"clients": 1}, "t").environment(clients)
    assert env["DB_IAM_AUTH"] == "0"
    assert env["DB_SHARD_1"].startswith(f"postgresql://{env['DB_USER']}@127.0.0.1:5432/")


def test_command_resolves_as_each_orchestrator_does() -> None:
    """ECS `command` and Kubernetes `args` replace CMD; a pod's `command` replaces the
    ENTRYPOINT and, without `args`, CMD too."""
    config = ImageConfig({}, ["uvicorn", "app"], ["tini", "--"], "/tmp", set())
    base = Task("t", "1:1", None, {}, [], None, True, True)

    def resolved(task: Task) -> list[str]:
        sandbox = Sandbox(Path("/"), config, task, {})
        try:
            return sandbox.command()
        finally:
            sandbox.stop()

    assert resolved(base) == ["tini", "--", "uvicorn", "app"]
    assert resolved(replace(base, command=["consume"])) == ["tini", "--", "consume"]
    assert resolved(replace(base, entrypoint=["sh"])) == ["sh"]
    assert resolved(replace(base, entrypoint=["sh"], command=["-c", "x"])) == ["sh", "-c", "x"]


def test_a_pods_empty_dir_gets_nothing_of_the_images_tmp() -> None:
    """Unlike ECS's volume at a declared VOLUME path, an emptyDir starts empty."""
    [api] = [w for w in workloads_from_plan(_phase3()) if w.name == "api"]
    config = ImageConfig({}, [], [], "/tmp", {"/tmp"})
    pod, ecs = (
        Sandbox(Path("/"), config, api, {}),
        Sandbox(Path("/"), config, replace(api, empty_dirs=None), {}),
    )
    try:
        assert [(m.path, m.copy) for m in pod.mounts()] == [("/tmp", False)]
        assert [(m.path, m.copy) for m in ecs.mounts()] == [("/tmp", True)]
    finally:
        pod.stop()
        ecs.stop()
