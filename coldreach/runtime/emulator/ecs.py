"""ECS: the cluster, task definitions, services."""

from __future__ import annotations

import json
from typing import Any

from coldreach.runtime.emulator.backend import MotoBackend, deletes, handles, updates
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from coldreach.runtime.model import Resource
from policies import tokens as t


@handles(t.ECS_CLUSTER)
def cluster(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    cluster = b.client("ecs").create_cluster(
        **drop_none(
            {
                "clusterName": name,
                "settings": [
                    {"name": s["name"], "value": s["value"]} for s in c.get("settings", [])
                ]
                or None,
                "tags": aws_tags(c.get("tags"), "key", "value") or None,
            }
        )
    )["cluster"]
    return cluster["clusterArn"], {"arn": cluster["clusterArn"]}


@handles(t.TASK_DEFINITION)
def task_definition(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    platform = c.get("runtimePlatform")
    task = b.client("ecs").register_task_definition(
        **drop_none(
            {
                "family": c.get("family"),
                "containerDefinitions": json.loads(c.get("containerDefinitions")),
                "cpu": c.get("cpu"),
                "memory": c.get("memory"),
                "networkMode": c.get("networkMode"),
                "requiresCompatibilities": c.get("requiresCompatibilities"),
                "runtimePlatform": platform,
                "executionRoleArn": c.get("executionRoleArn"),
                "taskRoleArn": c.get("taskRoleArn"),
                "volumes": [{"name": v["name"]} for v in c.get("volumes", [])] or None,
                "tags": aws_tags(c.get("tags"), "key", "value") or None,
            }
        )
    )["taskDefinition"]
    arn = task["taskDefinitionArn"]
    return c.get("family"), {
        "arn": arn,
        "arnWithoutRevision": arn.rsplit(":", 1)[0],
        "revision": task["revision"],
    }


def _network(c: Call) -> dict[str, Any] | None:
    net = c.get("networkConfiguration") or {}
    if not net:
        return None
    return {
        "awsvpcConfiguration": {
            "subnets": net.get("subnets", []),
            "securityGroups": net.get("securityGroups", []),
            "assignPublicIp": "ENABLED" if net.get("assignPublicIp") else "DISABLED",
        }
    }


def _deployment(c: Call) -> dict[str, Any] | None:
    breaker = c.get("deploymentCircuitBreaker")
    deployment = drop_none(
        {
            "minimumHealthyPercent": c.get("deploymentMinimumHealthyPercent"),
            "maximumPercent": c.get("deploymentMaximumPercent"),
            "deploymentCircuitBreaker": (
                {"enable": bool(breaker["enable"]), "rollback": bool(breaker["rollback"])}
                if breaker
                else None
            ),
        }
    )
    return deployment or None


def _load_balancers(c: Call) -> list[dict[str, Any]] | None:
    return [
        {
            "targetGroupArn": lb["targetGroupArn"],
            "containerName": lb["containerName"],
            "containerPort": lb["containerPort"],
        }
        for lb in c.get("loadBalancers", [])
    ] or None


# What UpdateService changes in place; cluster, name and launch type replace a service.
_UPDATABLE = {
    "taskDefinition",
    "desiredCount",
    "networkConfiguration",
    "loadBalancers",
    "healthCheckGracePeriodSeconds",
    "deploymentMinimumHealthyPercent",
    "deploymentMaximumPercent",
    "deploymentCircuitBreaker",
    "enableExecuteCommand",
    "propagateTags",
    "platformVersion",
}


@handles(t.ECS_SERVICE)
def service(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    service = b.client("ecs").create_service(
        **drop_none(
            {
                "cluster": c.get("cluster"),
                "serviceName": name,
                "taskDefinition": c.get("taskDefinition"),
                "desiredCount": c.get("desiredCount", 0),
                "launchType": c.get("launchType"),
                "platformVersion": c.get("platformVersion"),
                "networkConfiguration": _network(c),
                "loadBalancers": _load_balancers(c),
                "healthCheckGracePeriodSeconds": c.get("healthCheckGracePeriodSeconds"),
                "deploymentConfiguration": _deployment(c),
                "enableExecuteCommand": c.get("enableExecuteCommand"),
                "propagateTags": c.get("propagateTags"),
                "tags": aws_tags(c.get("tags"), "key", "value") or None,
            }
        )
    )["service"]
    return service["serviceArn"], {"arn": service["serviceArn"]}


@updates(t.ECS_SERVICE)
def service_settings(b: MotoBackend, c: Call, old: Resource) -> Outputs:
    """UpdateService with what changed: on AWS a new deployment starts the new tasks
    and drains the old ones once they are healthy (the circuit breaker rolls back)."""
    changed = c.changed_from(old)
    c.refuse_other_changes(old, _UPDATABLE | {"tags"})
    args = {
        "taskDefinition": c.get("taskDefinition"),
        "desiredCount": c.get("desiredCount") if "desiredCount" in changed else None,
        "networkConfiguration": _network(c) if "networkConfiguration" in changed else None,
        "loadBalancers": _load_balancers(c) if "loadBalancers" in changed else None,
        "healthCheckGracePeriodSeconds": c.get("healthCheckGracePeriodSeconds"),
        "deploymentConfiguration": _deployment(c),
        "enableExecuteCommand": c.get("enableExecuteCommand"),
        "propagateTags": c.get("propagateTags"),
    }
    b.client("ecs").update_service(
        cluster=c.get("cluster"), service=str(old.out("name") or old.id), **drop_none(args)
    )
    return {}


@deletes(t.TASK_DEFINITION)
def deregister_task_definition(b: MotoBackend, old: Resource) -> None:
    """A replaced revision is deregistered (INACTIVE), as the provider does without
    `skipDestroy`; running tasks keep it until they stop."""
    b.client("ecs").deregister_task_definition(taskDefinition=str(old.out("arn")))
