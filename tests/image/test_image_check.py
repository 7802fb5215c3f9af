"""What `make image-check` runs: every app task definition the plan renders, as ECS would."""

from __future__ import annotations

import secrets

from image_check import LocalServices, tasks_from_plan

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
